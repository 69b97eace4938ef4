"""Blobs as files under one folder. Writes go to a temporary name first, then rename, so a reader
(or a process killed mid-write) never sees half a file. Folders are created 0700 and files 0600
(mkstemp's mode): only the account running Heimdex reads them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from heimdex.blobs.base import BlobStore
from heimdex.private_files import private_dir


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(self.root)

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"blob key escapes the store: {key!r}")
        return path

    def _write_atomically(self, key: str, write) -> None:
        target = self.path(key)
        private_dir(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(key, lambda out: out.write(data))

    def put_file(self, key: str, source: Path) -> None:
        def copy(out) -> None:
            with open(source, "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._write_atomically(key, copy)

    def move(self, source: str, target: str) -> None:
        destination = self.path(target)
        private_dir(destination.parent)
        os.replace(self.path(source), destination)

    def get_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix)
        if folder.is_file():
            folder.unlink()
            return 1
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        yield path
