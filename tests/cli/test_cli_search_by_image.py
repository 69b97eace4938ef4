"""`heimdex search --image PHOTO` and `--like SCENE_ID`, run as the real command on a real library, on
both backends (on "server" the CLI reaches PostgreSQL and S3 through the environment)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import assets
from tests.cli.test_cli_commands import ok, refused
from tests.e2e.conftest import BACKENDS, backend_settings, settings_env
from tests.e2e.test_more_like_this import LIBRARY, library_video


@dataclass(frozen=True)
class Library:
    home: Path
    env: dict[str, str]  # HEIMDEX_* of the deployment


@pytest.fixture(scope="module", params=BACKENDS)
def library(request, tmp_path_factory) -> Iterator[Library]:
    home = tmp_path_factory.mktemp(f"cli-image-{request.param}")
    with backend_settings(request.param, home) as settings:
        env = settings_env(settings)
        ok(home, "index", str(library_video()), **env)
        yield Library(home, env)


def hits(library: Library, *args: str) -> list[dict]:
    found = ok(library.home, "search", *args, "--json", "--all", "--min-confidence", "low", **library.env)
    return json.loads(found)


def test_search_by_photo_and_more_like_this(library) -> None:
    found = hits(library, "--image", str(assets.kphotoalbum_photo("spiff_2.jpg")))
    assert [h["scene_index"] for h in found][:1] == [LIBRARY.index("spiff")]
    assert set(found[0]["channels"]) == {"image"} and len(found) == len(LIBRARY) + 1
    similar = hits(library, "--like", found[0]["scene_id"])
    assert found[0]["scene_id"] not in [h["scene_id"] for h in similar] and len(similar) == len(LIBRARY)
    photo = str(assets.kphotoalbum_photo("spiff_2.jpg"))
    text = ok(library.home, "search", "--image", photo, "--limit", "2", **library.env)
    assert "image #1" in text and "2 hits" in text


def test_bad_photos_and_arguments_are_user_errors(library, tmp_path) -> None:
    home, env = library.home, library.env
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    refused(home, "search", "--image", str(bad), reason="not a supported image", **env)
    refused(home, "search", "--image", str(tmp_path / "missing.jpg"), reason="no such file", **env)
    refused(home, "search", "--like", "nope", reason="no scene", **env)
    refused(home, "search", reason="give a query, --image PHOTO or --like SCENE_ID", **env)
    photo = str(assets.kphotoalbum_photo("spiff_2.jpg"))
    refused(home, "search", "--image", photo, "--like", "x", reason="not both", **env)
