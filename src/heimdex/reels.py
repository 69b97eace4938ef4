"""Highlight reels: scenes (from one search or picked by hand) compiled into one MP4, in order.

Making one is a job in the background: `Reels.start` checks the scenes and returns at once, a thread
encodes the reel and reports progress. The job's state is a small JSON document beside the reel in
blob storage (blobs/keys.py), so that every API process sharing the storage sees it, and it outlives
a restart; a job whose state has not moved for STALE_S (its process stopped) reads failed,
"interrupted".
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from heimdex.blobs.keys import reel_key, reel_state_key
from heimdex.db import new_id
from heimdex.errors import InvalidMediaError, InvalidRequestError, NotFoundError
from heimdex.logging import get_logger
from heimdex.private_files import private_dir
from heimdex.service import Heimdex

log = get_logger(__name__)

MAX_SCENES = 50
PUBLISH_EVERY_S = 0.5  # progress is written at most this often
STALE_S = 120.0  # a queued or running job silent this long is no longer being made
ReelStateName = Literal["queued", "running", "done", "failed"]


class Reel(BaseModel):
    id: str
    owner_id: str
    scene_ids: list[str]
    fade: bool
    state: ReelStateName = "queued"
    progress: float = 0.0
    error: str | None = None
    length_s: float = Field(0.0, description="The reel's planned length, then its real one")
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)


class Reels:
    def __init__(self, heimdex: Heimdex, workers: int = 1) -> None:
        self.heimdex = heimdex
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="reel")
        self._lock = threading.Lock()

    # ------------------------------------------------------------ jobs
    def start(self, owner_id: str, scene_ids: Sequence[str], *, fade: bool = True) -> Reel:
        """Check the scenes (the owner's, a reel not too long) and queue the reel."""
        reel = Reel(
            id=new_id(),
            owner_id=owner_id,
            scene_ids=list(scene_ids),
            fade=fade,
            length_s=self._planned_length(owner_id, scene_ids),
        )
        self._save(reel)
        self._pool.submit(self._run, reel)
        return reel

    def get(self, owner_id: str, reel_id: str) -> Reel:
        key = reel_state_key(owner_id, reel_id)
        if not reel_id.isalnum() or not self.heimdex.blobs.exists(key):
            raise NotFoundError(f"no reel {reel_id!r}")
        reel = Reel.model_validate_json(self.heimdex.blobs.get_bytes(key))
        if reel.state in ("queued", "running") and time.time() - reel.updated_at > STALE_S:
            reel.state, reel.error = "failed", "interrupted: make the reel again"
        return reel

    def file_key(self, owner_id: str, reel_id: str) -> str:
        reel = self.get(owner_id, reel_id)
        if reel.state != "done":
            raise NotFoundError(f"reel {reel_id!r} is not ready ({reel.state})")
        return reel_key(owner_id, reel.id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ making one
    def make(
        self,
        owner_id: str,
        scene_ids: Sequence[str],
        out: Path,
        *,
        fade: bool = True,
        progress: Callable[[float], None] = lambda fraction: None,
    ) -> float:
        """Encode the reel into `out` now (the CLI); returns its length in seconds."""
        from heimdex.media.clips import Part, join_parts  # decoders: not needed to search

        self._planned_length(owner_id, scene_ids)
        scenes = [self.heimdex.scene(owner_id, scene_id) for scene_id in scene_ids]
        with ExitStack() as stack:
            local: dict[str, Path] = {}
            for scene in scenes:
                if scene.video_id not in local:
                    video = self.heimdex.video(scene.video_id, owner_id)
                    local[video.id] = stack.enter_context(self.heimdex.blobs.local_path(video.original_key))
            parts = [Part(local[s.video_id], s.start_s, s.end_s) for s in scenes]
            return join_parts(parts, out, fade=fade, progress=progress)

    def _planned_length(self, owner_id: str, scene_ids: Sequence[str]) -> float:
        if not scene_ids:
            raise InvalidRequestError("a reel needs at least one scene")
        if len(scene_ids) > MAX_SCENES:
            raise InvalidRequestError(f"a reel takes at most {MAX_SCENES} scenes")
        length = sum(self._scene_length(owner_id, scene_id) for scene_id in scene_ids)
        if length > (limit := self.heimdex.settings.reel_max_s):
            raise InvalidRequestError(f"the reel would last {length:.0f} s; the limit is {limit:.0f} s")
        return round(length, 3)

    def _scene_length(self, owner_id: str, scene_id: str) -> float:
        scene = self.heimdex.scene(owner_id, scene_id)
        return scene.end_s - scene.start_s

    def _run(self, reel: Reel) -> None:
        home = private_dir(self.heimdex.settings.home / "tmp")
        published = [0.0]

        def report(fraction: float) -> None:
            if time.monotonic() - published[0] >= PUBLISH_EVERY_S:
                published[0] = time.monotonic()
                self._save(reel.model_copy(update={"state": "running", "progress": round(fraction, 3)}))

        try:
            self._save(reel := reel.model_copy(update={"state": "running"}))
            with tempfile.TemporaryDirectory(dir=home) as folder:
                out = Path(folder) / "reel.mp4"
                length = self.make(reel.owner_id, reel.scene_ids, out, fade=reel.fade, progress=report)
                self.heimdex.blobs.put_file(reel_key(reel.owner_id, reel.id), out)
            reel = reel.model_copy(update={"state": "done", "progress": 1.0, "length_s": round(length, 3)})
            log.info("reel.done", reel_id=reel.id, scenes=len(reel.scene_ids), seconds=reel.length_s)
        except Exception as exc:  # the job's reason for the user; the log keeps the kind
            known = isinstance(exc, InvalidRequestError | NotFoundError | InvalidMediaError)
            message = str(exc) if known else "could not make the reel"
            reel = reel.model_copy(update={"state": "failed", "error": message})
            log.warning("reel.failed", reel_id=reel.id, error=f"{type(exc).__name__}: {exc}")
        self._save(reel)

    def _save(self, reel: Reel) -> None:
        data = reel.model_copy(update={"updated_at": time.time()}).model_dump_json().encode()
        with self._lock:  # the job's thread and the request thread write the same document
            self.heimdex.blobs.put_bytes(reel_state_key(reel.owner_id, reel.id), data)
