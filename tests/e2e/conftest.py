"""One small real corpus, indexed once per session with the real models, shared by the e2e tests.

`indexed` runs every test that uses it on both backends (see BACKENDS): "embedded" (SQLite and
local files) and "server" (PostgreSQL + pgvector and S3, real servers from tests/services.py). The
pipeline runs in-process on both, so the server variant needs no queue (no Redis).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from heimdex.ml.registry import Models
from heimdex.service import Heimdex
from heimdex.settings import Settings
from tests import assets, services

BACKENDS = ["embedded", "server"]

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


# Unnamed people: KPhotoAlbum's demo photos, silent, two seconds each (a face's time tells its photo).
# First: Jesper alone; Jim, Jesper and Wayne (qt-logo.jpg, left to right); Anne Helene and Jesper.
# Second, later: Jesper alone; Jesper and Anne Helene again; Jesper in 1988; Jesper small (41 px).
PEOPLE_FIRST = ("jesper_2.jpg", "qt-logo.jpg", "bar55.jpg")
PEOPLE_SECOND = ("jesper.jpg", "bar55_2.jpg", "new_wave_2.jpg", "grand_canyon_2.jpg")


def people_video(name: str, photos: tuple[str, ...]) -> Path:
    scenes = [{"image": assets.kphotoalbum_photo(p), "say": None, "seconds": 2.0} for p in photos]
    return assets.narrated_video(name, scenes, width=1280, height=720)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> Models:
    """Models load once per session (the packaged Whisper is unpacked into a shared cache)."""
    return Models(Settings(home=tmp_path_factory.mktemp("models-home")))


@contextmanager
def backend_settings(backend: str, home: Path) -> Iterator[Settings]:
    """Settings of a fresh deployment on `backend`: on "server" its own database and bucket,
    dropped afterwards."""
    if backend == "embedded":
        yield Settings(home=home)
        return
    if backend != "server":
        raise ValueError(f"unknown backend {backend!r}: use one of {BACKENDS}")
    with services.fresh_postgres() as database, services.fresh_bucket() as bucket:
        yield Settings(
            home=home,
            database_url=database,
            storage_url=f"s3://{bucket}",
            **services.s3_endpoint().settings_fields(),
        )


@contextmanager
def backend_app(backend: str, home: Path, models: Models) -> Iterator[Heimdex]:
    with backend_settings(backend, home) as settings:
        app = Heimdex(settings, models=models)
        try:
            yield app
        finally:
            app.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """HEIMDEX_* variables that give a `heimdex` subprocess the same deployment as `settings`."""
    prefix = Settings.model_config["env_prefix"]
    fields = settings.model_dump(exclude_unset=True, exclude_none=True, exclude={"home"})
    return {
        f"{prefix}{name.upper()}": value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        for name, value in fields.items()
    }


@pytest.fixture(scope="session", params=BACKENDS)
def indexed(request: pytest.FixtureRequest, tmp_path_factory, models) -> Iterator[Heimdex]:
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    with backend_app(request.param, home, models) as app:
        added = app.add_file(news_video())
        video = app.process(added.video.id)
        assert video.state.value == "indexed", video.error
        yield app


def heimdex_cli(
    home: Path, *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI on `home`; `env` adds variables (for example settings_env(...) for server mode)."""
    env = {**os.environ, **(env or {}), "HEIMDEX_HOME": str(home), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "heimdex.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"heimdex {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        )
    return proc
