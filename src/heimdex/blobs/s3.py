"""Blobs as objects in an S3 bucket (AWS, or a self-hosted server such as SeaweedFS or MinIO).

The storage URL is s3://bucket/optional/prefix; endpoint, region and keys come from the settings,
falling back to boto3's own defaults (AWS_* variables, ~/.aws, instance roles) where unset.
Browsers talk to the bucket directly through presigned URLs: GET for playback and thumbnails,
POST (with a size limit the server enforces) for uploads.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import ClientError

from heimdex.blobs.base import BlobStore
from heimdex.blobs.filecache import FileCache
from heimdex.settings import Settings

# Parts of 16 MiB, four at a time: bounded memory, and up to 160 GB within S3's 10,000 parts.
TRANSFER = TransferConfig(
    multipart_threshold=16 * 1024**2, multipart_chunksize=16 * 1024**2, max_concurrency=4
)
_DELETE_BATCH = 1000  # the most DeleteObjects accepts
_MISSING = {"404", "NoSuchKey", "NotFound"}


def make_client(settings: Settings, endpoint_url: str | None) -> BaseClient:
    config = Config(
        signature_version="s3v4",
        # Self-hosted servers rarely have wildcard DNS for bucket.host names.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        retries={"max_attempts": 5, "mode": "standard"},
        # Newer boto3 adds CRC checksums to every request; not every S3-compatible server accepts them.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # A session of our own: boto3's default session is not safe to create clients from in threads.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=(
            settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        ),
        config=config,
    )


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


def _content_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class S3BlobStore(BlobStore):
    def __init__(self, bucket: str, prefix: str = "", settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.client = make_client(self.settings, self.settings.s3_endpoint_url)
        self.cache = FileCache(self.settings.resolved_s3_cache_dir, self.settings.s3_cache_max_bytes)

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    def object_key(self, key: str, *, folder: bool = False) -> str:
        """The object's name in the bucket. Keys are relative paths: no '.', '..' or empty segments
        (some servers normalise them, which would let a key leave the prefix)."""
        parts = key.split("/")
        if folder and parts[-1] == "":
            parts = parts[:-1]  # "videos/x/" names a folder
        if (key and any(p in ("", ".", "..") for p in parts)) or "\\" in key:
            raise ValueError(f"blob key escapes the store: {key!r}")
        if not key and not folder:
            raise ValueError("empty blob key")
        return self.prefix + key

    # ------------------------------------------------------------ writes
    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=_content_type(key)
        )

    def put_file(self, key: str, source: Path) -> None:
        # upload_file reads the file part by part (multipart above the threshold), never all at once.
        self.client.upload_file(
            str(source),
            self.bucket,
            self.object_key(key),
            ExtraArgs={"ContentType": _content_type(key)},
            Config=TRANSFER,
        )

    def move(self, source: str, target: str) -> None:
        # Managed copy: the server copies (in parts past 5 GB), then the source goes.
        self.client.copy(
            {"Bucket": self.bucket, "Key": self.object_key(source)},
            self.bucket,
            self.object_key(target),
            ExtraArgs={"ContentType": _content_type(target), "MetadataDirective": "REPLACE"},
            Config=TRANSFER,
        )
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(source))

    def delete_prefix(self, prefix: str) -> int:
        """Delete the object `prefix` names and every object under `prefix/`; `videos/ab` never
        touches `videos/abc`. The empty prefix means the whole store."""
        base = self.object_key(prefix, folder=True).rstrip("/")
        found = self._list(f"{base}/" if base else "")
        if base and (exact := self._head_object(base)) is not None:
            found[base] = exact["ETag"]
        names = list(found)
        deleted = 0
        for start in range(0, len(names), _DELETE_BATCH):
            deleted += self._delete_batch(names[start : start + _DELETE_BATCH])
        # A deleted video's original should not linger on this machine until evicted.
        for name, etag in found.items():
            self.cache.discard(self._cache_name(name, etag))
        return deleted

    def _list(self, prefix: str) -> dict[str, str]:
        """{object name: ETag} of every object whose name starts with `prefix`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return {item["Key"]: item.get("ETag", "") for page in pages for item in page.get("Contents", [])}

    def _delete_batch(self, names: list[str]) -> int:
        reply = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": n} for n in names], "Quiet": True}
        )
        if errors := reply.get("Errors"):
            raise OSError(f"could not delete {len(errors)} objects, first {errors[0]}")
        return len(names)

    # ------------------------------------------------------------ reads
    def _head_object(self, name: str) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise

    def _head(self, key: str) -> dict[str, Any]:
        head = self._head_object(self.object_key(key))
        if head is None:
            raise FileNotFoundError(key)
        return head

    def get_bytes(self, key: str) -> bytes:
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _is_missing(exc):
                raise FileNotFoundError(key) from exc
            raise
        with reply["Body"] as body:
            return body.read()

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except FileNotFoundError:
            return False
        return True

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        """A downloaded copy: from the shared cache if it fits there (a second call, in any thread
        or process, reuses it), otherwise a temporary file deleted after the block."""
        head = self._head(key)
        size = int(head["ContentLength"])
        if self.cache.fits(size):
            name = self._cache_name(self.object_key(key), head["ETag"])
            with self.cache.pinned(name, size, lambda dest: self._download(key, dest)) as path:
                yield path
        else:
            with self.cache.temporary(_safe_suffix(key)) as path:
                self._download(key, path)
                yield path

    def _cache_name(self, object_name: str, etag: str) -> str:
        """Names the content, not the key: a replaced object is a new entry, never a stale read."""
        identity = f"{self.settings.s3_endpoint_url}\0{self.bucket}\0{object_name}\0{etag}"
        return hashlib.sha256(identity.encode()).hexdigest()[:40] + _safe_suffix(object_name)

    def _download(self, key: str, dest: Path) -> None:
        # Streamed to disk in ranged parts; an interrupted part is retried by the transfer manager.
        self.client.download_file(self.bucket, self.object_key(key), str(dest), Config=TRANSFER)

    # ------------------------------------------------------------ browser access
    @cached_property
    def _presigner(self) -> BaseClient:
        """Signs URLs for the endpoint browsers reach (the signature covers the host name)."""
        public = self.settings.s3_public_endpoint_url
        if not public or public == self.settings.s3_endpoint_url:
            return self.client
        return make_client(self.settings, public)

    def _expiry(self, expires_s: int | None) -> int:
        return int(expires_s or self.settings.s3_presign_expiry_s)

    def url(self, key: str, expires_s: int | None = None, method: str = "GET") -> str:
        # A presigned URL is valid for one HTTP method: a HEAD on a GET URL is refused (403).
        return self._presigner.generate_presigned_url(
            "head_object" if method == "HEAD" else "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=self._expiry(expires_s),
        )

    def presigned_upload(
        self, key: str, content_type: str, max_bytes: int, expires_s: int | None = None
    ) -> dict[str, Any]:
        return self._presigner.generate_presigned_post(
            self.bucket,
            self.object_key(key),
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, int(max_bytes)]],
            ExpiresIn=self._expiry(expires_s),
        )


def _safe_suffix(key: str) -> str:
    """The key's extension, for decoders that look at it; only if it is plainly one."""
    suffix = Path(key).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", suffix) else ""
