"""One contract, two stores: every test runs on the local folder and on a real S3 server (SeaweedFS,
started by tests/services.py). Tests that only make sense for one of them say so in their name."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from heimdex.blobs import BlobStore, open_blob_store
from heimdex.blobs.local import LocalBlobStore
from heimdex.blobs.s3 import S3BlobStore
from heimdex.settings import Settings
from tests import services

MB = 1024**2
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    with services.fresh_bucket() as name:
        yield name


def s3_settings(home: Path, **extra) -> Settings:
    return Settings(home=home, **services.s3_endpoint().settings_fields(), **extra)


def s3_store(bucket: str, home: Path, **extra) -> S3BlobStore:
    """A store under a prefix of its own, so that tests sharing the module's bucket never meet."""
    store = open_blob_store(f"s3://{bucket}/t{next(_prefixes)}", s3_settings(home, **extra))
    assert isinstance(store, S3BlobStore)
    return store


@pytest.fixture(params=["local", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return open_blob_store(f"file://{tmp_path / 'blobs'}")
    return s3_store(request.getfixturevalue("s3_bucket"), tmp_path)


@pytest.fixture
def s3(s3_bucket: str, tmp_path: Path) -> S3BlobStore:
    return s3_store(s3_bucket, tmp_path)


def calls(store: S3BlobStore, operation: str) -> list[str]:
    """Records every request of one kind (GetObject, UploadPart...) the store's client sends."""
    seen: list[str] = []
    store.client.meta.events.register(f"before-call.s3.{operation}", lambda **_: seen.append(operation))
    return seen


def big_file(path: Path, size: int) -> str:
    """A file of incompressible bytes, written in pieces; returns its sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MB):
            chunk = os.urandom(MB)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MB):
            digest.update(chunk)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------ both stores
def test_bytes_and_text_round_trip(blobs: BlobStore) -> None:
    blobs.put_bytes("videos/v1/work/a.bin", b"\x00\x01binary")
    blobs.put_text("videos/v1/scenes.json", '{"title": "café"}')
    assert blobs.get_bytes("videos/v1/work/a.bin") == b"\x00\x01binary"
    assert blobs.get_text("videos/v1/scenes.json") == '{"title": "café"}'
    assert blobs.exists("videos/v1/scenes.json")
    assert blobs.size("videos/v1/work/a.bin") == 8
    blobs.put_bytes("videos/v1/work/a.bin", b"new")  # overwrite
    assert blobs.get_bytes("videos/v1/work/a.bin") == b"new"


def test_missing_blobs(blobs: BlobStore) -> None:
    assert not blobs.exists("videos/none/original.mp4")
    with pytest.raises(FileNotFoundError):
        blobs.get_bytes("videos/none/original.mp4")
    with pytest.raises(FileNotFoundError):
        blobs.size("videos/none/original.mp4")
    with pytest.raises(FileNotFoundError), blobs.local_path("videos/none/original.mp4"):
        pass


def test_put_file_streams_a_large_file(blobs: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "big.mp4"
    digest = big_file(source, 30 * MB)
    parts = calls(blobs, "UploadPart") if isinstance(blobs, S3BlobStore) else None
    tracemalloc.start()
    try:
        blobs.put_file("videos/big/original.mp4", source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB, f"put_file held {peak / MB:.0f} MB at once: it must stream"
    if parts is not None:
        assert len(parts) >= 2, "a 30 MB file goes up as a multipart upload"
    assert blobs.size("videos/big/original.mp4") == 30 * MB
    with blobs.local_path("videos/big/original.mp4") as path:
        assert sha256_file(path) == digest


def test_local_path_is_a_readable_file_with_the_key_suffix(blobs: BlobStore) -> None:
    blobs.put_bytes("videos/v2/original.mkv", b"matroska?")
    with blobs.local_path("videos/v2/original.mkv") as path:
        assert path.is_file()
        assert path.suffix == ".mkv"  # decoders may guess the format from it
        assert path.read_bytes() == b"matroska?"


def test_delete_prefix_removes_exactly_that_prefix(blobs: BlobStore) -> None:
    for key in ("videos/ab/original.mp4", "videos/ab/work/x.json", "videos/ab/runs/1/s.webp"):
        blobs.put_bytes(key, b"x")
    for key in ("videos/abc/original.mp4", "videos/a/original.mp4", "people/ab/0000.jpg"):
        blobs.put_bytes(key, b"sibling")
    assert blobs.delete_prefix("videos/ab/work/") == 1
    assert blobs.exists("videos/ab/original.mp4")
    assert blobs.delete_prefix("videos/ab/") == 2
    assert not blobs.exists("videos/ab/original.mp4")
    assert not blobs.exists("videos/ab/runs/1/s.webp")
    for key in ("videos/abc/original.mp4", "videos/a/original.mp4", "people/ab/0000.jpg"):
        assert blobs.get_bytes(key) == b"sibling", key
    assert blobs.delete_prefix("videos/ab/") == 0
    assert blobs.delete_prefix("videos/a") == 1  # without the slash: still only that folder
    assert blobs.exists("videos/abc/original.mp4")


@pytest.mark.parametrize("key", ["../outside.txt", "videos/../../outside.txt", "/etc/passwd-copy"])
def test_keys_cannot_escape_the_store(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="escapes"):
        blobs.put_bytes(key, b"no")


# ------------------------------------------------------------------------------------ local only
def test_local_store_hands_out_no_urls(tmp_path: Path) -> None:
    store = open_blob_store(f"file://{tmp_path}")
    assert isinstance(store, LocalBlobStore)
    store.put_bytes("a.txt", b"a")
    assert store.url("a.txt") is None  # the API streams local files itself
    assert store.presigned_upload("up.mp4", "video/mp4", 100) is None


def test_storage_urls(tmp_path: Path) -> None:
    store = open_blob_store("s3://my-bucket/some/prefix/", Settings(home=tmp_path))
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("my-bucket", "some/prefix/")
    assert store.object_key("videos/x/original.mp4") == "some/prefix/videos/x/original.mp4"
    assert open_blob_store("s3://my-bucket", Settings(home=tmp_path)).prefix == ""
    with pytest.raises(ValueError, match="bucket"):
        open_blob_store("s3:///prefix", Settings(home=tmp_path))
    with pytest.raises(ValueError, match="unsupported"):
        open_blob_store("ftp://host/x")


# ------------------------------------------------------------------------------------ S3 only
def test_s3_local_path_downloads_once_then_uses_the_cache(s3: S3BlobStore, tmp_path: Path) -> None:
    s3.put_bytes("videos/v/original.mp4", b"v" * 1000)
    gets = calls(s3, "GetObject")
    for _ in range(3):  # probe, audio, cuts...
        with s3.local_path("videos/v/original.mp4") as path:
            assert path.read_bytes() == b"v" * 1000
            assert path.is_relative_to(tmp_path / "cache" / "s3")
    assert len(gets) == 1
    assert len(s3.cache.entries()) == 1
    # Another store (another worker process) on the same machine shares the cache.
    other = open_blob_store(f"s3://{s3.bucket}/{s3.prefix}", s3.settings)
    other_gets = calls(other, "GetObject")
    with other.local_path("videos/v/original.mp4") as path:
        assert path.read_bytes() == b"v" * 1000
    assert other_gets == []


def test_s3_delete_prefix_drops_the_local_copies(s3: S3BlobStore) -> None:
    s3.put_bytes("videos/v/original.mp4", b"private")
    s3.put_bytes("videos/w/original.mp4", b"kept")
    for key in ("videos/v/original.mp4", "videos/w/original.mp4"):
        with s3.local_path(key):
            pass
    assert len(s3.cache.entries()) == 2
    s3.delete_prefix("videos/v/")
    (left,) = s3.cache.entries()
    assert left.read_bytes() == b"kept"


def test_s3_cache_follows_a_changed_object(s3: S3BlobStore) -> None:
    s3.put_bytes("videos/v/original.mp4", b"first")
    with s3.local_path("videos/v/original.mp4") as path:
        assert path.read_bytes() == b"first"
    s3.put_bytes("videos/v/original.mp4", b"second")  # new ETag: a new entry
    with s3.local_path("videos/v/original.mp4") as path:
        assert path.read_bytes() == b"second"


def test_s3_concurrent_local_paths_download_once(s3: S3BlobStore) -> None:
    s3.put_bytes("videos/v/original.mp4", b"c" * 100_000)
    gets = calls(s3, "GetObject")
    start = threading.Barrier(4)

    def read() -> bytes:
        start.wait()
        with s3.local_path("videos/v/original.mp4") as path:
            return path.read_bytes()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: read(), range(4)))
    assert results == [b"c" * 100_000] * 4
    assert len(gets) == 1


def test_s3_cache_stays_under_its_cap_and_spares_files_in_use(s3_bucket: str, tmp_path: Path) -> None:
    s3 = s3_store(s3_bucket, tmp_path, s3_cache_max_bytes=3 * MB)
    for i in range(5):
        s3.put_bytes(f"videos/v{i}/original.mp4", bytes([i]) * MB)
    with s3.local_path("videos/v0/original.mp4") as pinned:
        for i in range(1, 5):
            with s3.local_path(f"videos/v{i}/original.mp4") as path:
                assert path.read_bytes() == bytes([i]) * MB
            assert sum(p.stat().st_size for p in s3.cache.entries()) <= 3 * MB
        assert pinned.read_bytes() == bytes([0]) * MB  # in use, so never evicted


def test_s3_blob_larger_than_the_cache_is_a_temporary_file(s3_bucket: str, tmp_path: Path) -> None:
    s3 = s3_store(s3_bucket, tmp_path, s3_cache_max_bytes=MB)
    s3.put_bytes("videos/v/original.mp4", b"t" * (2 * MB))
    with s3.local_path("videos/v/original.mp4") as path:
        assert path.stat().st_size == 2 * MB
    assert not path.exists()
    assert s3.cache.entries() == []


def test_s3_delete_prefix_pages_through_many_objects(s3: S3BlobStore) -> None:
    keys = [f"videos/many/frames/{i:05d}.jpg" for i in range(1005)]  # more than a page and a batch
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_bytes(k, b"f"), keys))
    s3.put_bytes("videos/many2/original.mp4", b"sibling")
    assert s3.delete_prefix("videos/many/") == 1005
    assert s3._list(s3.object_key("videos/many/", folder=True)) == {}
    assert s3.exists("videos/many2/original.mp4")


def test_s3_presigned_url_serves_the_object_with_ranges(s3: S3BlobStore) -> None:
    data = bytes(range(256)) * 40
    s3.put_bytes("videos/v/original.mp4", data)
    url = s3.url("videos/v/original.mp4")
    assert url is not None
    whole = httpx.get(url)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["content-type"] == "video/mp4"  # browsers play it inline
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert httpx.get(url.replace("Signature=", "Signature=0")).status_code == 403
    assert httpx.head(url).status_code == 403, "a URL is signed for one method"
    head = httpx.head(s3.url("videos/v/original.mp4", method="HEAD"))
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)


def test_s3_presigned_url_expires(s3: S3BlobStore) -> None:
    s3.put_bytes("videos/v/thumb.webp", b"w")
    url = s3.url("videos/v/thumb.webp", expires_s=1)
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403


def test_s3_presigned_upload_accepts_a_file_and_enforces_the_limit(s3: S3BlobStore) -> None:
    form = s3.presigned_upload("uploads/u1/video.mp4", "video/mp4", max_bytes=1000, expires_s=60)
    assert form is not None and set(form) >= {"url", "fields"}
    ok = httpx.post(form["url"], data=form["fields"], files={"file": ("v.mp4", b"m" * 999, "video/mp4")})
    assert ok.status_code in (200, 201, 204), ok.text
    assert s3.get_bytes("uploads/u1/video.mp4") == b"m" * 999

    form = s3.presigned_upload("uploads/u2/video.mp4", "video/mp4", max_bytes=1000, expires_s=60)
    big = {"file": ("v.mp4", b"m" * 1001, "video/mp4")}
    too_big = httpx.post(form["url"], data=form["fields"], files=big)
    assert too_big.status_code in (400, 403), too_big.text
    assert not s3.exists("uploads/u2/video.mp4")


def test_move_renames_a_blob(blobs: BlobStore) -> None:
    blobs.put_bytes("uploads/u1/tok/original.mp4", b"video bytes")
    blobs.move("uploads/u1/tok/original.mp4", "videos/v1/original.mp4")
    assert blobs.get_bytes("videos/v1/original.mp4") == b"video bytes"
    assert not blobs.exists("uploads/u1/tok/original.mp4")
