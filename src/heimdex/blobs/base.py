"""The blob interface. Keys are relative, slash-separated paths such as `videos/<id>/original.mp4`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from heimdex.settings import Settings


class BlobStore(ABC):
    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def put_file(self, key: str, source: Path) -> None:
        """Copy a local file in (streamed; never read whole into memory)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Rename a blob. On S3 the copy happens inside the store: no bytes pass through this process."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under `prefix` (a folder-like prefix ending in '/'); returns how many."""

    @abstractmethod
    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A local file holding the blob for the duration of the block (decoders need a path)."""

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    # Direct access for browsers. A store that cannot hand out URLs returns None, and the API then
    # streams the blob (or receives the upload) itself.
    def url(self, key: str, expires_s: int | None = None, method: str = "GET") -> str | None:
        """A URL that GETs the blob (Range requests included), or answers HEAD for it with
        method="HEAD", for `expires_s` seconds; None when the store cannot hand out URLs."""
        return None

    def presigned_upload(
        self, key: str, content_type: str, max_bytes: int, expires_s: int | None = None
    ) -> dict[str, Any] | None:
        """Where a browser POSTs a file to `key` itself: {"url": ..., "fields": {...}} for a
        multipart/form-data POST whose last part is `file`; the server refuses more than max_bytes.
        None if the store cannot take direct uploads."""
        return None


def open_blob_store(url: str, settings: Settings | None = None) -> BlobStore:
    """file:///path, or s3://bucket/optional/prefix with endpoint and keys from `settings`."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        from heimdex.blobs.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.path))
    if parsed.scheme == "s3":
        from heimdex.blobs.s3 import S3BlobStore
        from heimdex.settings import Settings

        if not parsed.netloc:
            raise ValueError(f"storage URL {url!r} names no bucket: use s3://bucket/optional/prefix")
        return S3BlobStore(parsed.netloc, parsed.path, settings or Settings())
    raise ValueError(f"unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix")
