"""Direct upload from the browser to object storage: presign, POST to S3, then index. Real SeaweedFS."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests import services
from tests.api.live import LiveServer, wait_for
from tests.e2e.conftest import news_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory) -> Iterator[LiveServer]:
    with services.fresh_bucket() as bucket:
        settings = {"storage_url": f"s3://{bucket}", **services.s3_endpoint().settings_fields()}
        with LiveServer(tmp_path_factory.mktemp("direct-home"), **settings) as live:
            yield live


def test_presigned_upload_is_indexed(s3_server) -> None:
    carol = s3_server.user("carol@example.com")
    data = news_video().read_bytes()
    r = carol.post(
        "/videos/presign", json={"filename": "news.mp4", "size_bytes": len(data), "content_type": "video/mp4"}
    )
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["key"].startswith(f"uploads/{carol.user_id}/")
    # the browser's part: straight to the store, with no Heimdex credentials
    stored = httpx.post(grant["url"], data=grant["fields"], files={"file": ("news.mp4", data, "video/mp4")})
    assert stored.status_code in (200, 201, 204), stored.text
    r = carol.post("/videos/uploaded", json={"key": grant["key"], "filename": "news.mp4"})
    assert r.status_code == 201, r.text
    video = r.json()
    done = wait_for(carol, video["id"])
    assert done["state"] == "indexed", done["error"]
    assert done["scene_count"] == 5 and done["filename"] == "news.mp4"
    blobs = s3_server.ctx.heimdex.blobs
    assert not blobs.exists(grant["key"])  # moved to where originals live, not copied
    played = carol.get(f"/videos/{video['id']}/stream", follow_redirects=False)
    assert played.status_code == 307 and "X-Amz-Signature" in played.headers["location"]


def test_direct_upload_refuses_what_it_should(s3_server) -> None:
    dave = s3_server.user("dave@example.com")
    r = dave.post("/videos/presign", json={"filename": "notes.txt", "size_bytes": 10})
    assert r.status_code == 415
    r = dave.post("/videos/presign", json={"filename": "huge.mp4", "size_bytes": 10**15})
    assert r.status_code == 413
    grant = dave.post("/videos/presign", json={"filename": "a.mp4", "size_bytes": 100}).json()
    too_big = httpx.post(
        grant["url"], data=grant["fields"], files={"file": ("a.mp4", b"x" * 101, "video/mp4")}
    )
    assert too_big.status_code >= 400  # the store enforces the declared size
    assert dave.post("/videos/uploaded", json={"key": grant["key"], "filename": "a.mp4"}).status_code == 404
    erin = s3_server.user("erin@example.com")
    r = erin.post("/videos/uploaded", json={"key": grant["key"], "filename": "a.mp4"})
    assert r.status_code == 404  # someone else's upload key


# Only the embedded backend stores blobs as local files (the server backend's S3 is tested above).
@pytest.mark.parametrize("server", ["embedded"], indirect=True)
def test_local_storage_says_to_use_the_normal_upload(alice) -> None:
    r = alice.post("/videos/presign", json={"filename": "a.mp4", "size_bytes": 100})
    assert r.status_code == 400 and "POST /videos" in r.json()["message"]
