"""Re-embedding indexed videos' frames when the CLIP-style model changes.

HEIMDEX_CLIP_MODEL names the model that embeds new videos' frames; an earlier model's vectors stay
where they are, each tagged with its model's name, so the two never mix. `Reembedder.run` goes
through every owner's videos, decodes from each original the frames that lack the configured
model's vector (at the times the other models' rows of them record), embeds them and stores the
vectors, a few dozen frames per transaction. Search keeps to the earlier vectors until an owner's
set is complete (search/clip_coverage.py); then the earlier CLIP models' vectors of that owner are
deleted, once every process has had time to count again and move to the new ones (a process counts
an owner's coverage at most every COVERAGE_TTL_S: deleting at once would leave its searches on
vectors that are gone for that long).

Stopping at any moment loses nothing (a run embeds only what is missing), and it runs beside
`serve` and workers: a video reprocessed meanwhile takes none of the vectors of its old frames, and
its new run embeds its new ones. It runs as `heimdex reembed` (a progress bar), and in the background
(LibraryReembed, one process at a time under a lease in the store) of `heimdex serve` when its
in-process worker runs and of every `heimdex worker` that takes the vision queue (server mode: a
worker started with a new HEIMDEX_CLIP_MODEL re-embeds the library by itself); `GET /search/clip`
reports each owner's progress from the store, and whether some process is re-embedding, whichever
it is.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from heimdex.errors import HeimdexError
from heimdex.logging import get_logger
from heimdex.ml.base import IMAGE_VECTOR_MODEL
from heimdex.service import COVERAGE_TTL_S, REEMBED_LEASE
from heimdex.store import StoredFrame

if TYPE_CHECKING:
    from heimdex.domain import Video
    from heimdex.ml.clip import OnnxClipEmbedder
    from heimdex.search.clip_coverage import ClipCoverage
    from heimdex.service import Heimdex

log = get_logger(__name__)

CHUNK = 32  # frames decoded, embedded and stored at a time: bounded memory however long the video
MAX_IDLE_S = 900.0  # the longest wait between two looks of LibraryReembed


@dataclass(frozen=True)
class ReembedProgress:
    """How far a run is: frames embedded so far of those missing when it started."""

    done: int
    total: int
    owner_id: str = ""
    video_id: str = ""


class Reembedder:
    def __init__(self, heimdex: Heimdex, *, retire_after_s: float = COVERAGE_TTL_S) -> None:
        self.heimdex = heimdex
        self.retire_after_s = retire_after_s  # how long complete owners' earlier vectors stay

    def model(self) -> OnnxClipEmbedder:
        clip = self.heimdex.models.clip
        if clip is None:
            raise HeimdexError("no CLIP-style model is configured: set HEIMDEX_CLIP_MODEL first")
        return clip

    def missing(self, owners: Sequence[str]) -> int:
        """Frames of these owners without a vector of the configured model."""
        return sum(self._fresh_coverage(owner).missing for owner in owners)

    def pending(self, owners: Sequence[str]) -> bool:
        """Whether a run has anything to do: frames to embed, or earlier vectors to retire."""
        return any(self._fresh_coverage(owner).missing or self._retirable(owner) for owner in owners)

    def run(
        self,
        owners: Sequence[str] | None = None,
        *,
        on_progress: Callable[[ReembedProgress], None] = lambda progress: None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> int:
        """Embed every frame of the owners' (None: every owner's) videos that lacks the configured
        model's vector, then retire the complete owners' earlier CLIP vectors, retire_after_s after
        the last frame was stored; returns how many frames were embedded. `keep_going` is asked
        between chunks and during that wait: False stops the run (the next one retires what this one
        completed)."""
        clip = self.model()
        owners = list(owners) if owners is not None else self.heimdex.store.owners()
        total, done = self.missing(owners), 0
        on_progress(ReembedProgress(0, total))
        for owner in owners:
            for video in self.heimdex.store.list_videos(owner):
                for added in self._video(owner, video, clip, keep_going):
                    done += added
                    on_progress(ReembedProgress(done, total, owner, video.id))
                if not keep_going():
                    return done
        retiring = [owner for owner in owners if self._retirable(owner)]
        if retiring and not self._wait(self.retire_after_s, keep_going):
            return done
        for owner in retiring:
            self.retire(owner)
        return done

    def retire(self, owner_id: str) -> list[str]:
        """Delete the owner's vectors of earlier CLIP-style models now, if every frame of theirs has
        the configured model's; returns the models retired (none while the set is incomplete)."""
        earlier = self._retirable(owner_id)
        for model in earlier:
            removed = self.heimdex.store.delete_frame_vectors(owner_id, model)
            log.info("reembed.retired", owner_id=owner_id, model=model, vectors=removed)
        self.heimdex.forget_coverage(owner_id)
        return earlier

    def _retirable(self, owner_id: str) -> list[str]:
        """The earlier CLIP-style models whose vectors the owner has, once their set is complete."""
        coverage = self._fresh_coverage(owner_id)
        if not coverage.complete:
            return []
        counts = self.heimdex.store.frame_vector_counts(owner_id)
        return sorted(m for m in counts if m not in (coverage.configured, IMAGE_VECTOR_MODEL))

    @staticmethod
    def _wait(seconds: float, keep_going: Callable[[], bool]) -> bool:
        """Sleep `seconds` unless told to stop; whether the whole wait passed."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if not keep_going():
                return False
            time.sleep(min(0.2, left))
        return True

    def _video(
        self, owner_id: str, video: Video, clip: OnnxClipEmbedder, keep_going: Callable[[], bool]
    ) -> Iterator[int]:
        """Embed the video's missing frames a chunk at a time, yielding how many each chunk added. A
        video whose original cannot be read is logged and left for the next run (or a reprocess)."""
        frames = self.heimdex.store.frames_missing(owner_id, video.id, clip.name)
        if not frames:
            return
        try:
            with self.heimdex.blobs.local_path(video.original_key) as path:
                for start in range(0, len(frames), CHUNK):
                    if not keep_going():
                        return
                    yield self._chunk(owner_id, path, frames[start : start + CHUNK], clip)
        except (HeimdexError, OSError) as exc:
            log.warning("reembed.video_failed", owner_id=owner_id, video_id=video.id, error=str(exc))

    def _chunk(self, owner_id: str, path: Path, frames: Sequence[StoredFrame], clip: OnnxClipEmbedder) -> int:
        from heimdex.media import decode_frames  # decoders: not needed to search

        max_side = self.heimdex.settings.frame_max_side
        images = dict(decode_frames(path, [f.t_s for f in frames], max_side=max_side))
        # decode_frames answers each wanted time (never below 0) it reaches before the video ends
        found = [f for f in frames if max(0.0, f.t_s) in images]
        vectors = clip.embed_images([images[max(0.0, f.t_s)] for f in found])
        added = self.heimdex.store.add_frame_vectors(owner_id, clip.name, found, vectors)
        self.heimdex.forget_coverage(owner_id)
        return added

    def _fresh_coverage(self, owner_id: str) -> ClipCoverage:
        self.heimdex.forget_coverage(owner_id)
        return self.heimdex.clip_coverage(owner_id)


def process_holder(kind: str) -> str:
    """Who holds a lease: the kind of process, its machine and pid (as worker ids say)."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


class LibraryReembed:
    """Re-embedding on a thread of a long-running process, one process at a time: `heimdex serve`
    with its in-process worker, and every `heimdex worker` that takes the vision queue with a
    CLIP-style model configured (server mode: any of them may be the one, on any machine).

    It looks at once and then every `poll_s`: when some owner's frames lack the configured model's
    vectors (or complete owners' earlier vectors wait to be retired) it takes the store's lease
    REEMBED_LEASE (JobLedger.claim_lease, the database's clock), runs Reembedder.run while renewing
    it, and gives it up. Another process finding the lease held does nothing; one that dies holding
    it lets it expire after `lease_s`, and the next look of another process takes over where it
    stopped (a run embeds only what is missing; two runs at once would only write the same rows
    twice, which the frames' primary key keeps single). A look that finds nothing to do, or a run that
    could not embed anything (originals gone), waits twice as long before the next, up to MAX_IDLE_S.
    GET /search/clip reports the owner's progress from the store and who holds the lease."""

    def __init__(self, heimdex: Heimdex, holder: str, lease_s: float, poll_s: float | None = None) -> None:
        self.reembedder = Reembedder(heimdex)
        self.store = heimdex.store
        self.holder, self.lease_s = holder, lease_s
        self.poll_s = poll_s if poll_s is not None else lease_s
        self.progress = ReembedProgress(0, 0)
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holding = threading.Event()
        self._renewed = 0.0

    @property
    def running(self) -> bool:
        """Whether this process is re-embedding now (it holds the lease)."""
        return self._holding.is_set()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="reembed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        idle = self.poll_s
        while not self._stop.is_set():
            try:
                worked = self.look()
                self.error = None
            except Exception as exc:  # a model that will not load, a store gone: report, keep the process
                self.error = f"{type(exc).__name__}: {exc}"
                log.warning("reembed.failed", holder=self.holder, error=self.error)
                worked = False
            idle = self.poll_s if worked is None or worked else min(idle * 2, MAX_IDLE_S)
            self._stop.wait(idle)

    def look(self) -> bool | None:
        """Re-embed now if there is work and nobody else does it. True: it embedded or retired
        something; False: there was nothing to do, or nothing it could do; None: another holds the
        lease (look again soon, in case it dies)."""
        owners = self.store.owners()
        if not self.reembedder.pending(owners):
            return False
        if not self.store.claim_lease(REEMBED_LEASE, self.holder, self.lease_s):
            log.info("reembed.busy", holder=self.holder, by=self.store.lease_holder(REEMBED_LEASE))
            return None
        self._holding.set()
        self._renewed = time.monotonic()
        try:
            log.info("reembed.started", holder=self.holder, missing=self.reembedder.missing(owners))
            done = self.reembedder.run(owners, on_progress=self._moved, keep_going=self._keep_going)
            log.info("reembed.finished", holder=self.holder, frames=done, stopped=not self._keep_going())
        finally:
            self._holding.clear()
            with suppress(Exception):
                self.store.release_lease(REEMBED_LEASE, self.holder)
        return done > 0 or not self.reembedder.pending(owners)

    def _keep_going(self) -> bool:
        """Asked between chunks (and during the wait before retiring): go on unless stopped or the
        lease was lost; renews it a few times a lease."""
        if self._stop.is_set():
            return False
        if time.monotonic() - self._renewed < self.lease_s / 3:
            return True
        try:
            held = self.store.renew_lease(REEMBED_LEASE, self.holder, self.lease_s)
        except Exception:  # the store away: the next chunk's writes fail, and the run with them
            return True
        if not held:
            log.warning("reembed.lost", holder=self.holder)
            return False
        self._renewed = time.monotonic()
        return True

    def _moved(self, progress: ReembedProgress) -> None:
        self.progress = progress
