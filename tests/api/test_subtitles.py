"""Subtitles of a real narrated video over the API, read back by independent parsers."""

from __future__ import annotations

import html
import io

import pytest
import srt
import webvtt

from heimdex.subtitles import MAX_CUE_S, MAX_ROW
from tests.api.live import upload, wait_for


def test_subtitles_follow_the_transcript_in_time_and_text(alice, news) -> None:
    r = alice.get(news["links"]["subtitles"])
    assert r.status_code == 200 and r.headers["content-type"] == "text/vtt; charset=utf-8"
    assert "content-disposition" not in r.headers, "the player's <track> reads it inline"
    cues = list(webvtt.from_buffer(io.StringIO(r.text)))
    scenes = alice.get(f"/videos/{news['id']}/scenes", params={"words": True}).json()
    words = [w["text"].strip() for s in scenes for w in s["words"]]
    assert len(cues) >= 4 and words
    assert " ".join(html.unescape(c.text).replace("\n", " ") for c in cues).split() == words
    starts = [c.start_in_seconds for c in cues]
    assert starts == sorted(starts) and cues[-1].end_in_seconds <= news["duration_s"] + 1
    for cue in cues:
        rows = html.unescape(cue.text).split("\n")
        assert len(rows) <= 2 and all(len(row) <= MAX_ROW or " " not in row for row in rows), cue.text
        assert cue.end_in_seconds - cue.start_in_seconds <= MAX_CUE_S + 1  # webvtt-py rounds to seconds
    said = " ".join(words).lower()
    assert "garden" in said, "the neural voice's words are in the subtitles"


def test_cue_times_are_the_recognised_words_times(alice, news) -> None:
    """Each cue starts when its first word starts and ends when its last word ends (SubRip keeps the
    milliseconds; webvtt-py rounds), and the cues hold the words in order."""
    scenes = alice.get(f"/videos/{news['id']}/scenes", params={"words": True}).json()
    words = [w for s in scenes for w in s["words"] if w["text"].strip()]
    cues = list(srt.parse(alice.get(f"/videos/{news['id']}/subtitles.srt").text))
    at = 0
    for cue in cues:
        count = len(cue.content.split())
        first, last = words[at], words[at + count - 1]
        assert " ".join(w["text"].strip() for w in words[at : at + count]) == cue.content.replace("\n", " ")
        assert cue.start.total_seconds() == pytest.approx(first["start_s"], abs=0.0011), cue
        assert cue.end.total_seconds() == pytest.approx(last["end_s"], abs=0.0011), cue
        at += count
    assert at == len(words), "every word is in a cue"


def test_subrip_download_names_the_file_after_the_video(alice, news) -> None:
    r = alice.get(f"/videos/{news['id']}/subtitles.srt", params={"download": True})
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-subrip; charset=utf-8"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="evening news.srt"')
    assert "filename*=UTF-8''evening%20news.srt" in disposition
    subs = list(srt.parse(r.text))
    vtt = list(webvtt.from_buffer(io.StringIO(alice.get(news["links"]["subtitles"]).text)))
    assert [s.content for s in subs] == [html.unescape(c.text) for c in vtt]


def test_subtitles_are_the_owners_and_need_an_indexed_video(alice, bob, news, tmp_path) -> None:
    assert bob.get(f"/videos/{news['id']}/subtitles.vtt").status_code == 404
    assert alice.get("/videos/nope/subtitles.vtt").status_code == 404
    assert alice.get(f"/videos/{news['id']}/subtitles.ass").status_code == 422
    broken = tmp_path / "broken.mp4"  # bytes of its own: the same file twice is one video
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(255, -1, -1)) * 40)
    failed = wait_for(alice, upload(alice, broken, "no speech.mp4").json()["videos"][0]["id"])
    assert failed["state"] == "failed"
    r = alice.get(failed["links"]["subtitles"])
    assert r.status_code == 409 and "not indexed" in r.json()["message"]
