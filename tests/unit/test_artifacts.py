"""Typed artifacts: what a stage saves comes back as its declared type, under the same keys as ever,
and a stage's view refuses artifacts its declaration does not list."""

from __future__ import annotations

import re

import numpy as np
import pytest

from heimdex.blobs.local import LocalBlobStore
from heimdex.domain import FrameRef, MediaInfo
from heimdex.pipeline import artifacts as a
from heimdex.pipeline.context import Artifacts, UndeclaredArtifact
from heimdex.pipeline.graph import GRAPH


@pytest.fixture
def work(tmp_path) -> Artifacts:
    return Artifacts(LocalBlobStore(tmp_path), "v1")


def test_round_trips_as_the_declared_type(work):
    info = MediaInfo(container="mp4", duration_s=3.5, width=64, height=48, fps=25.0, video_codec="h264")
    work.save(a.MEDIA_INFO, info)
    assert work.load(a.MEDIA_INFO) == info
    frames = [FrameRef(scene_index=0, t_s=1.0, key="k")]
    work.save(a.FRAMES, frames)
    assert work.load(a.FRAMES) == frames and isinstance(work.load(a.FRAMES)[0], FrameRef)
    work.save(a.CUTS, [1.5, 3.0])
    assert work.load(a.CUTS) == [1.5, 3.0]
    work.save(a.OCR_MODEL, "rapidocr")
    assert work.load(a.OCR_MODEL) == "rapidocr"
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    work.save(a.TEXT_VECTORS, vectors)
    loaded = work.load(a.TEXT_VECTORS)
    assert loaded.dtype == np.float32 and np.array_equal(loaded, vectors)


def test_keys_and_bytes_are_the_ones_runs_already_left(work, tmp_path):
    work.save(a.RUN, {"run_id": "0f0f0f0f"})
    assert work.key(a.RUN) == "videos/v1/work/run.json"
    assert (tmp_path / "videos/v1/work/run.json").read_bytes() == b'{"run_id":"0f0f0f0f"}'
    assert work.key(a.OCR_MODEL) == "videos/v1/work/model-ocr.json"
    assert work.exists(a.RUN) and not work.exists(a.CUTS)
    with pytest.raises(ValueError, match="not a work artifact"):
        work.key(a.ORIGINAL)
    work.clear()
    assert not work.exists(a.RUN)


def test_a_stage_reads_and_writes_only_what_it_declares(work):
    work.save(
        a.MEDIA_INFO, MediaInfo(container="mp4", duration_s=1, width=2, height=2, fps=1, video_codec="x")
    )
    work.save(a.FRAMES, [])
    stage = GRAPH["audio_extract"]
    view = work.only(stage.name, reads=stage.inputs, writes=stage.outputs)
    assert view.load(a.MEDIA_INFO).duration_s == 1
    view.save(a.AUDIO, np.zeros(3, dtype=np.float32))
    assert view.exists(a.AUDIO)  # its own output
    with pytest.raises(UndeclaredArtifact, match=re.escape("audio_extract reads frames.json")):
        view.load(a.FRAMES)
    with pytest.raises(UndeclaredArtifact, match=re.escape("audio_extract writes media_info.json")):
        view.save(a.MEDIA_INFO, view.load(a.MEDIA_INFO))
