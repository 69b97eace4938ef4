"""One small real corpus, indexed once per session with the real models, shared by the e2e tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from heimdex.ml.registry import Models
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets

# (image, narration, on-screen text). Scene 1 shows Donna, KPhotoAlbum's dog (found by appearance);
# scene 3 shows Jesper (found by face). Scene 2 is silent: only its caption and picture can find it.
NEWS_SCENES = [
    (
        lambda: assets.opencv_sample("home.jpg"),
        "The city council approved money to build two hundred affordable apartments"
        " beside the train station.",
        None,
    ),
    (
        lambda: assets.kphotoalbum_photo("donna_2.jpg"),
        "Our guest this evening describes the vegetable garden she planted on her rooftop.",
        None,
    ),
    (lambda: assets.skimage_photo("chelsea"), None, "FARMERS MARKET SATURDAY"),
    (
        lambda: assets.kphotoalbum_photo("jesper_2.jpg"),
        "Our reporter explains why the ferry timetable changed this winter.",
        None,
    ),
    (
        lambda: assets.skimage_photo("stereo_motorcycle"),
        "Police are asking riders to wear helmets after a rise in crashes on the coastal highway.",
        None,
    ),
]


def news_video() -> Path:
    scenes = [
        {"image": image(), "say": say, "text": text, "seconds": 4.0} for image, say, text in NEWS_SCENES
    ]
    return assets.narrated_video("e2e_news", scenes)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Models:
    """Models load once per session (the packaged Whisper is unpacked into a shared cache)."""
    return Models(Settings(home=tmp_path_factory.mktemp("models-home")))


def make_app(home: Path, models: Models) -> Heimdex:
    return Heimdex(Settings(home=home), models=models)


@pytest.fixture(scope="session")
def indexed(tmp_path_factory, models) -> Heimdex:
    app = make_app(tmp_path_factory.mktemp("home"), models)
    added = app.add_file(news_video())
    video = app.process(added.video.id)
    assert video.state.value == "indexed", video.error
    return app


def heimdex_cli(
    home: Path, *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HEIMDEX_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "heimdex.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"heimdex {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
