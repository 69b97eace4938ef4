"""Index a real video with its blobs on S3 (a real SeaweedFS server, tests/services.py): originals,
thumbnails and sidecars land in the bucket, the intermediate work/ objects do not outlive the commit,
the original is downloaded once for all the stages that decode it, and deleting the video deletes
every object it had."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from heimdex.blobs.s3 import S3BlobStore
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import services
from tests.e2e.conftest import news_video
from tests.e2e.fleet import referenced_keys

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_bucket() -> Iterator[str]:
    with services.fresh_bucket() as name:
        yield name


def test_pipeline_on_s3(tmp_path, models, s3_bucket) -> None:
    settings = Settings(
        home=tmp_path, storage_url=f"s3://{s3_bucket}", **services.s3_endpoint().settings_fields()
    )
    app = Heimdex(settings, models=models)
    assert isinstance(app.blobs, S3BlobStore)
    original_gets: list[str] = []

    def count_original(params, **_) -> None:
        if params.get("Key", "").endswith("/original.mp4"):
            original_gets.append(params["Key"])

    app.blobs.client.meta.events.register("provide-client-params.s3.GetObject", count_original)

    added = app.add_file(news_video())
    video = app.process(added.video.id)
    assert video.state.value == "indexed", video.error

    prefix = f"videos/{video.id}/"
    keys = services.bucket_keys(s3_bucket)
    assert video.original_key in keys
    assert all(k.startswith(prefix) for k in keys), "nothing outside the video's folder"
    assert not [k for k in keys if k.startswith(f"{prefix}work/")], "work/ artifacts outlive the commit"
    assert len(original_gets) == 1, f"the original was downloaded {len(original_gets)} times"
    assert not (tmp_path / "blobs").exists(), "nothing went to the local folder"

    scenes = app.store.job_scenes(video.id)
    assert len(scenes) == 5
    for scene in scenes:
        assert scene.thumbnail_key in keys and scene.sidecar_key in keys
        sidecar = json.loads(app.blobs.get_text(scene.sidecar_key))
        assert (sidecar["video_id"], sidecar["scene_index"]) == (video.id, scene.index)
        assert sidecar["thumbnail"] == scene.thumbnail_key
        assert app.blobs.get_bytes(scene.thumbnail_key)[8:12] == b"WEBP"
    crops = keys - {video.original_key} - {s.thumbnail_key for s in scenes} - {s.sidecar_key for s in scenes}
    assert crops and all("/faces/" in k for k in crops), "besides them only the faces' crops"
    assert keys == referenced_keys(app, [video.id]), "every blob is one the store refers to"

    hit = app.search("ferry timetable").hits[0]
    assert hit.thumbnail.startswith("http") and "X-Amz-Signature" in hit.thumbnail  # a URL, not a bare key
    assert httpx.get(hit.thumbnail).content[8:12] == b"WEBP"
    assert hit.scene_index == 3

    app.delete_video(video.id)
    assert services.bucket_keys(s3_bucket) == set()
    assert app.blobs.cache.entries() == [], "the deleted original is still cached on this machine"
    app.close()
