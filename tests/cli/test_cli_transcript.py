"""`heimdex transcript show | correct | undo` in subprocesses on a real narrated video: the corrected
line is shown as edited, search finds its words, undo restores the recognised line."""

from __future__ import annotations

import html
import io
import json

import pytest
import srt
import webvtt

from tests.cli.run import heimdex
from tests.cli.test_cli_commands import ok, refused, search, videos
from tests.e2e.test_corrections import ferry_video

CORRECTED = "The harbour ferry leaves at noon from Zeelandia pier."


def fulltext_hits(home, query: str) -> list[dict]:
    return [h for h in search(home, query) if "fulltext" in h["channels"]]


def test_show_correct_and_undo_a_line(tmp_path) -> None:
    home = tmp_path / "home"
    assert ok(home, "index", str(ferry_video())).splitlines()[-1] == "indexed 1"
    (video_id,) = videos(home)
    lines = json.loads(ok(home, "transcript", "show", video_id, "--json"))
    first = lines[0]
    assert "ferry" in first["text"].lower() and first["edit"] is None and len(lines) >= 2
    shown = ok(home, "transcript", "show", video_id)
    assert first["text"] in shown and "edited" not in shown

    at = str((first["start_s"] + first["end_s"]) / 2)
    said = ok(home, "transcript", "correct", video_id, CORRECTED, "--at", at)
    edit_id = said.split("(edit ")[1].split(")")[0]
    assert said.startswith("corrected 0:00") and CORRECTED in said
    after = json.loads(ok(home, "transcript", "show", video_id, "--json"))
    assert after[0]["text"] == CORRECTED and after[0]["edit"] == edit_id and after[1:] == lines[1:]
    assert f"(edited: {edit_id})" in ok(home, "transcript", "show", video_id)
    assert fulltext_hits(home, "Zeelandia")[0]["video_id"] == video_id
    # Subtitles of speech, timed by its words (the first cue starts with the first word), follow the
    # correction; both formats hold the same cues.
    out = tmp_path / "ferry.srt"
    ok(home, "export", "subtitles", video_id, "--format", "srt", "-o", str(out))
    cues = list(srt.parse(out.read_text(encoding="utf-8")))
    assert cues and cues[0].start.total_seconds() == pytest.approx(first["start_s"], abs=0.0011)
    assert CORRECTED in " ".join(c.content.replace("\n", " ") for c in cues)
    vtt = list(webvtt.from_buffer(io.StringIO(ok(home, "export", "subtitles", video_id))))
    assert [html.unescape(c.text) for c in vtt] == [c.content for c in cues]
    found = ok(home, "search", "Zeelandia pier", "--limit", "1").splitlines()
    assert "Zeelandia" in "\n".join(found) and found[-1].startswith("1 hit in "), found

    refused(
        home,
        "transcript",
        "correct",
        video_id,
        "nothing said here",
        "--at",
        "999",
        reason="no line is spoken",
    )
    refused(home, "transcript", "undo", video_id, "not-an-edit", reason="no correction")
    ok(home, "transcript", "undo", video_id, edit_id)
    assert json.loads(ok(home, "transcript", "show", video_id, "--json")) == lines
    assert fulltext_hits(home, "Zeelandia") == []
    proc = heimdex(home, "transcript", "show", "0123456789abcdef")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
