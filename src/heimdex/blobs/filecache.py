"""A bounded folder of downloaded blobs, shared by the threads and processes of one machine.

Decoders need a file path, and the pipeline opens a video's original several times (probe, audio,
cuts, frames), so a remote original is downloaded once and kept here. Entries are named by their
content (key + ETag), so a changed object is simply a new entry and a stale one is never read.

Locks are POSIX `flock`s, which hold between threads (each opens its own descriptor) and processes:
- a user holds a shared lock on the entry for the duration of its block, so eviction (which needs
  an exclusive lock, without waiting) never deletes a file someone is reading;
- downloads take one of a fixed set of stripe lock files, so two workers asking for the same blob
  at once download it once, without an ever-growing number of lock files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

_STRIPES = 16
_STALE_TMP_S = 3600  # a download still writing touches its file; one untouched this long was abandoned


class FileCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)

    def fits(self, size: int) -> bool:
        return 0 < size <= self.max_bytes

    @contextmanager
    def pinned(self, name: str, size: int, fill: Callable[[Path], None]) -> Iterator[Path]:
        """The entry `name` (filled by `fill(path)` if absent), safe from eviction inside the block."""
        entry = self.root / name
        with self._stripe(name):
            fd = self._open_pinned(entry)
            if fd is None:
                self._make_room(size)
                self._fill(entry, fill)
                fd = self._open_pinned(entry)
                if fd is None:  # only if the folder is being deleted under us
                    raise FileNotFoundError(entry)
        try:
            os.utime(fd)  # recently used: evicted last
            yield entry
        finally:
            os.close(fd)  # releases the shared lock

    @contextmanager
    def temporary(self, suffix: str) -> Iterator[Path]:
        """A scratch file in the cache's folder (same disk), deleted after the block."""
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=suffix)
        os.close(fd)
        try:
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)

    def discard(self, name: str) -> None:
        """Drop an entry unless someone is using it (then it ages out like any other)."""
        self._evict(self.root / name)

    def entries(self) -> list[Path]:
        return [p for p in self.root.iterdir() if not p.name.startswith(".") and p.is_file()]

    # ------------------------------------------------------------ internals
    @contextmanager
    def _stripe(self, name: str) -> Iterator[None]:
        stripe = int(hashlib.sha1(name.encode()).hexdigest(), 16) % _STRIPES
        fd = os.open(self.root / ".locks" / f"{stripe:02d}", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _open_pinned(entry: Path) -> int | None:
        """A descriptor holding a shared lock on the entry, or None if there is no entry."""
        try:
            fd = os.open(entry, os.O_RDONLY)
        except FileNotFoundError:
            return None
        fcntl.flock(fd, fcntl.LOCK_SH)
        # An evictor may have unlinked the file between our open and our lock: then it is gone.
        try:
            if os.fstat(fd).st_ino == os.stat(entry).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
        return None

    def _fill(self, entry: Path, fill: Callable[[Path], None]) -> None:
        # Written under a temporary name and renamed: a killed download never leaves a bad entry.
        with self.temporary(entry.suffix) as tmp:
            fill(tmp)
            os.replace(tmp, entry)

    def _make_room(self, incoming: int) -> None:
        """Evict the least recently used entries nobody is using until `incoming` bytes fit."""
        self._drop_abandoned_downloads()
        sized = []
        for path in self.entries():
            with suppress(FileNotFoundError):
                stat = path.stat()
                sized.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in sized)
        for _, size, path in sorted(sized):
            if total + incoming <= self.max_bytes:
                break
            if self._evict(path):
                total -= size

    @staticmethod
    def _evict(path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False  # in use: keep it, even if that means going over the cap for a while
        try:
            path.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)

    def _drop_abandoned_downloads(self) -> None:
        cutoff = time.time() - _STALE_TMP_S
        for path in self.root.glob(".tmp-*"):
            with suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
