"""Crashes and bad files: killing `heimdex index` mid-way loses nothing; a bad file fails alone."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heimdex.domain import StageState, VideoState
from heimdex.pipeline.context import Artifacts
from heimdex.pipeline.events import RunAbandoned, StageEvent
from heimdex.pipeline.graph import STAGES
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets
from tests.e2e.conftest import heimdex_cli, news_video

pytestmark = pytest.mark.slow


def ledger(home: Path) -> dict[str, tuple[str, int]]:
    db = home / "heimdex.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as con:
        try:
            return {s: (st, n) for s, st, n in con.execute("SELECT stage, state, attempts FROM stage_runs")}
        except sqlite3.OperationalError:
            return {}


def test_killed_index_resumes_without_repeating_or_duplicating(tmp_path):
    video = news_video()
    env = {**os.environ, "HEIMDEX_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "heimdex.cli", "index", str(video)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and ledger(tmp_path).get("vision_sample_frames", ("", 0))[0] != "done":
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = ledger(tmp_path)
    assert before.get("vision_sample_frames", ("",))[0] == "done", before
    assert before.get("commit", ("",))[0] != "done"  # it really died part-way

    heimdex_cli(tmp_path, "index", str(video))
    after = ledger(tmp_path)
    assert set(after) == set(STAGES) and all(state == "done" for state, _ in after.values())
    for stage, (state, attempts) in before.items():
        if state == "done":
            assert after[stage][1] == attempts, f"{stage} ran again"
    status = json.loads(heimdex_cli(tmp_path, "status", "--json").stdout)
    assert [v["state"] for v in status] == ["indexed"] and status[0]["scene_count"] == 5
    with sqlite3.connect(tmp_path / "heimdex.db") as con:
        assert con.execute("SELECT count(*), count(DISTINCT id) FROM scenes").fetchone() == (5, 5)
    video_dir = tmp_path / "blobs" / "videos" / status[0]["id"]
    assert not (video_dir / "work").exists() and len(list((video_dir / "runs").iterdir())) == 1


def test_bad_files_fail_alone_with_a_reason(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "empty.mp4").write_bytes(b"")
    (inbox / "notes.mp4").write_text("this is not a video\n" * 50)
    good = news_video()
    (inbox / "truncated.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (inbox / "good.mp4").symlink_to(good)
    home = tmp_path / "home"
    proc = heimdex_cli(home, "index", str(inbox), check=False)
    assert proc.returncode == 1, proc.stderr
    videos = {v["filename"]: v for v in json.loads(heimdex_cli(home, "status", "--json").stdout)}
    assert videos["good.mp4"]["state"] == "indexed"
    for name in ("empty.mp4", "notes.mp4", "truncated.mp4"):
        assert videos[name]["state"] == "failed" and videos[name]["error"].startswith("upload_validate:")
    assert "empty" in videos["empty.mp4"]["error"].lower()
    assert "notes.mp4" in videos["notes.mp4"]["error"] and "original" not in videos["notes.mp4"]["error"]
    assert "failed" in proc.stderr and "notes.mp4" in proc.stderr


def test_cli_errors_are_messages_not_tracebacks(tmp_path):
    proc = heimdex_cli(tmp_path, "search", "person:Nobody", check=False)
    assert proc.returncode == 2 and "no enrolled person" in proc.stderr and "Traceback" not in proc.stderr
    proc = heimdex_cli(tmp_path, "people", "add", "Coffee", str(assets.skimage_photo("coffee")), check=False)
    assert proc.returncode == 2 and "no face" in proc.stderr and "Traceback" not in proc.stderr
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    proc = heimdex_cli(tmp_path, "people", "add", "Ghost", str(notes), check=False)
    assert proc.returncode == 2 and "notes.jpg" in proc.stderr and "Traceback" not in proc.stderr
    proc = heimdex_cli(tmp_path, "index", str(tmp_path / "missing.mp4"), check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


def test_a_run_that_loses_its_video_writes_nothing_more(tmp_path, models):
    """A worker frozen past its lease wakes up inside a stage whose inputs the new owner has already
    cleared: the stage fails, but that failure is not the video's. The run must stop without writing
    the failure (or anything else) into a ledger that now belongs to another worker."""
    app = Heimdex(Settings(home=tmp_path), models=models)
    video = app.add_file(news_video()).video
    owner = {"still": True}

    def taken_over_now(event: StageEvent) -> None:  # the moment the OCR stage starts
        if event.stage == "vision_embed_frames" and event.state == StageState.RUNNING and owner["still"]:
            owner["still"] = False
            Artifacts(app.blobs, video.id).clear()  # what the new owner's commit does when it ends

    runner = app.runner(on_event=taken_over_now, keep_going=lambda: owner["still"])
    with pytest.raises(RunAbandoned):
        runner.run(video.id)
    records = {r.stage: r for r in app.stages(video.id)}
    assert records["vision_embed_frames"].state == StageState.RUNNING  # neither failed nor retried
    assert records["vision_embed_frames"].attempts == 1 and records["vision_embed_frames"].error is None
    assert "commit" not in records and app.video(video.id).state == VideoState.PROCESSING
    assert runner.failure is None
    app.close()
