"""Transcript corrections over the API, on both backends: read the lines, correct one, search finds
the new words, take it back; bad corrections are 4xx, and another user's video is 404."""

from __future__ import annotations

import pytest

from tests.api.live import upload, wait_for
from tests.e2e.test_corrections import ferry_video

CORRECTED = "The harbour ferry leaves at noon from Zeelandia pier."


@pytest.fixture(scope="module")
def ferry(alice) -> dict:
    video = upload(alice, ferry_video(), "ferry.mp4").json()["videos"][0]
    done = wait_for(alice, video["id"])
    assert done["state"] == "indexed", done["error"]
    return done


def transcript(client, video_id: str) -> dict:
    r = client.get(f"/videos/{video_id}/transcript")
    assert r.status_code == 200, r.text
    return r.json()


def zeelandia_hits(client, video_id: str) -> list[dict]:
    hits = client.get("/search", params={"q": "Zeelandia", "video": video_id}).json()["hits"]
    return [h for h in hits if "fulltext" in h["channels"]]


def test_correct_a_line_then_take_it_back(alice, ferry) -> None:
    before = transcript(alice, ferry["id"])
    line = before["scenes"][0]["lines"][0]
    assert before["edits"] == [] and line["edit"] is None and "ferry" in line["text"].lower()
    assert zeelandia_hits(alice, ferry["id"]) == []

    r = alice.put(f"/videos/{ferry['id']}/transcript/lines", json={**line, "text": f"  {CORRECTED}\n"})
    assert r.status_code == 200, r.text
    edit = r.json()
    assert edit["text"] == CORRECTED and edit["recognised"] == line["text"]
    after = transcript(alice, ferry["id"])
    assert after["edits"] == [edit]
    assert after["scenes"][0]["lines"][0] == {
        "start_s": edit["start_s"], "end_s": edit["end_s"], "text": CORRECTED, "edit": edit["id"]
    }  # fmt: skip
    assert after["scenes"][1:] == before["scenes"][1:]
    hits = zeelandia_hits(alice, ferry["id"])
    assert hits and hits[0]["scene_id"] == before["scenes"][0]["scene_id"]
    scene = alice.get(f"/scenes/{hits[0]['scene_id']}").json()
    assert scene["transcript"].startswith(CORRECTED) and scene["lines"][0]["edit"] == edit["id"]
    vtt = alice.get(ferry["links"]["subtitles"]).text
    assert "Zeelandia" in vtt, "subtitles follow the correction"

    r = alice.delete(f"/videos/{ferry['id']}/transcript/edits/{edit['id']}")
    assert r.status_code == 204
    assert transcript(alice, ferry["id"]) == before
    assert zeelandia_hits(alice, ferry["id"]) == []
    assert alice.delete(f"/videos/{ferry['id']}/transcript/edits/{edit['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"start_s": 0.0, "end_s": 2.0, "text": "   "}, "needs some text"),
        ({"start_s": 0.0, "end_s": 2.0, "text": "bell\u0007"}, "control character"),
        ({"start_s": 0.0, "end_s": 2.0, "text": "x" * 1001}, "1000"),
        ({"start_s": 2.0, "end_s": 2.0, "text": "zero length"}, "start_s < end_s"),
        ({"start_s": 0.5, "end_s": 9.0, "text": "across two scenes"}, "no scene holds"),
        ({"start_s": -1, "end_s": 2.0, "text": "before the start"}, "greater than or equal"),
        ({"start_s": 0.0, "text": "no end"}, "end_s"),
        ({"start_s": 3.0, "end_s": 1.0, "text": "backwards"}, "start_s < end_s"),
        ({"start_s": 500.0, "end_s": 501.0, "text": "past the end"}, "no scene holds"),
        ({"start_s": 0.0, "end_s": 1e308, "text": "forever"}, "spans at most"),
        ({"start_s": 0.0, "end_s": 2.0, "text": ["not", "text"]}, "text"),
    ],
)
def test_a_bad_correction_is_a_4xx_that_says_why(alice, ferry, body, says) -> None:
    r = alice.put(f"/videos/{ferry['id']}/transcript/lines", json=body)
    assert r.status_code in (400, 422), r.text
    assert says in r.text
    assert transcript(alice, ferry["id"])["edits"] == []


def test_another_users_transcript_is_not_found(alice, bob, ferry) -> None:
    line = transcript(alice, ferry["id"])["scenes"][0]["lines"][0]
    assert bob.get(f"/videos/{ferry['id']}/transcript").status_code == 404
    r = bob.put(f"/videos/{ferry['id']}/transcript/lines", json={**line, "text": "Bob was here"})
    assert r.status_code == 404
    edit = alice.put(f"/videos/{ferry['id']}/transcript/lines", json={**line, "text": CORRECTED}).json()
    try:
        assert bob.delete(f"/videos/{ferry['id']}/transcript/edits/{edit['id']}").status_code == 404
        assert transcript(alice, ferry["id"])["edits"] == [edit]
        assert bob.get("/search", params={"q": "Zeelandia"}).json()["hits"] == []
    finally:
        assert alice.delete(f"/videos/{ferry['id']}/transcript/edits/{edit['id']}").status_code == 204
