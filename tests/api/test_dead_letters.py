"""Dead letters as users see them, in server mode with real servers (PostgreSQL, S3, Redis) and the
real worker: a job that keeps failing for a reason that is not the file's own (its original is gone
from object storage) is retried, then buried. GET /videos says `dead_letter: true` for an upload,
`heimdex status` says "failed (dead letter)" for a video `heimdex index --enqueue` queued; once the
originals are back, a reprocess (API) or enqueueing again (CLI) indexes them and clears both. An
input error (a broken file) fails at once and is no dead letter."""

from __future__ import annotations

import re

from heimdex.queue.base import DEAD_LETTER_PREFIX
from tests.api.backends import TEST_REDIS_DB, ThreadWorker, job_over, server_settings
from tests.api.live import LiveServer, eventually, upload, wait_for
from tests.api.test_users_cli import cli
from tests.api.test_videos import small_video

RETRIES = 1  # one retry: the second failure buries the job


def test_a_job_out_of_retries_is_a_dead_letter_until_reprocessed(tmp_path) -> None:
    with (
        server_settings(TEST_REDIS_DB) as fields,
        LiveServer(tmp_path, **fields, queue_retries=RETRIES, queue_backoff_s=0, stage_retries=0) as server,
    ):
        store, blobs, queue = server.ctx.heimdex.store, server.ctx.heimdex.blobs, server.ctx.queue
        # One video uploaded over the API, one queued by `heimdex index --enqueue` (the CLI's own
        # library, which `heimdex status` lists), and a broken file.
        owner = server.user("dead-letters@example.com")
        api_video = upload(owner, small_video(), "harbour.mp4").json()["videos"][0]["id"]
        queued = cli(server, "index", "--enqueue", str(small_video()))
        assert queued.returncode == 0, queued.stderr
        cli_video = re.search(r"queued (\w+) api-small\.mp4", queued.stdout)[1]
        broken = tmp_path / "broken.mp4"
        broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
        broken_id = upload(owner, broken).json()["videos"][0]["id"]
        originals = {vid: store.job_video(vid).original_key for vid in (api_video, cli_video)}
        for vid, key in originals.items():
            blobs.move(key, f"held-aside/{vid}.mp4")  # no worker runs yet: the jobs will miss them

        def video(vid: str) -> dict:
            r = owner.get(f"/videos/{vid}")
            assert r.status_code == 200, r.text
            return r.json()

        def buried(vid: str) -> bool:
            error = store.job_video(vid).error
            return bool(error and error.startswith(DEAD_LETTER_PREFIX))

        with ThreadWorker(server.settings):
            # wait for the burials, not for "failed": a first failure reads failed for a moment
            # before the worker queues the retry
            for vid in (api_video, cli_video):
                eventually(
                    lambda vid=vid: buried(vid) and job_over(server, vid), timeout=120, what="a dead letter"
                )
            assert wait_for(owner, broken_id)["state"] == "failed"

        dead = video(api_video)
        assert dead["state"] == "failed" and dead["dead_letter"] is True
        assert dead["error"].startswith(f"dead-letter after {RETRIES + 1} attempts: upload_validate: "), dead
        assert [s["stage"] for s in dead["stages"] if s["state"] == "failed"] == ["upload_validate"]
        # Dramatiq keeps each exhausted message in its dead-letter queue, for operators.
        assert sum(dead for _, _, dead in queue.counts().values()) == 2
        input_error = video(broken_id)
        assert input_error["state"] == "failed" and input_error["dead_letter"] is False
        listing = {v["id"]: v["dead_letter"] for v in owner.get("/videos").json()["videos"]}
        assert listing == {api_video: True, broken_id: False}
        assert _status_row(server, cli_video)[2] == "failed (dead letter)"

        for vid, key in originals.items():
            blobs.move(f"held-aside/{vid}.mp4", key)  # the originals are back: retrying can work now
        r = owner.post(f"/videos/{api_video}/reprocess")
        assert r.status_code == 202 and r.json()["dead_letter"] is False, r.text
        requeued = cli(server, "index", "--enqueue", str(small_video()))  # the CLI's reprocess
        assert requeued.returncode == 0 and f"queued {cli_video}" in requeued.stdout, requeued.stderr
        assert _status_row(server, cli_video)[2] == "queued"
        with ThreadWorker(server.settings):
            done = wait_for(owner, api_video)
            eventually(
                lambda: store.job_video(cli_video).state.value == "indexed", timeout=120, what="indexed"
            )
        assert done["state"] == "indexed" and done["error"] is None and done["dead_letter"] is False
        assert _status_row(server, cli_video)[2] == "indexed"


def _status_row(server: LiveServer, video_id: str) -> list[str]:
    """The cells of the video's row in `heimdex status`."""
    status = cli(server, "status")
    assert status.returncode == 0, status.stderr
    for line in status.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│").split("│")]
        if line.startswith("│") and cells[0] == video_id:
            return cells
    raise AssertionError(f"{video_id} is not in `heimdex status`:\n{status.stdout}")
