"""`heimdex search --image PHOTO` and `--like SCENE_ID`, run as the real command on a real library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import assets
from tests.cli.test_cli_commands import ok, refused
from tests.e2e.test_more_like_this import LIBRARY, library_video


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("cli-image")
    ok(home, "index", str(library_video()))
    return home


def hits(home: Path, *args: str) -> list[dict]:
    return json.loads(ok(home, "search", *args, "--json", "--all", "--min-confidence", "low"))


def test_search_by_photo_and_more_like_this(home) -> None:
    found = hits(home, "--image", str(assets.kphotoalbum_photo("spiff_2.jpg")))
    assert [h["scene_index"] for h in found][:1] == [LIBRARY.index("spiff")]
    assert set(found[0]["channels"]) == {"image"} and len(found) == len(LIBRARY) + 1
    similar = hits(home, "--like", found[0]["scene_id"])
    assert found[0]["scene_id"] not in [h["scene_id"] for h in similar] and len(similar) == len(LIBRARY)
    text = ok(home, "search", "--image", str(assets.kphotoalbum_photo("spiff_2.jpg")), "--limit", "2")
    assert "image #1" in text and "2 hits" in text


def test_bad_photos_and_arguments_are_user_errors(home, tmp_path) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    refused(home, "search", "--image", str(bad), reason="not a supported image")
    refused(home, "search", "--image", str(tmp_path / "missing.jpg"), reason="no such file")
    refused(home, "search", "--like", "nope", reason="no scene")
    refused(home, "search", reason="give a query, --image PHOTO or --like SCENE_ID")
    photo = str(assets.kphotoalbum_photo("spiff_2.jpg"))
    refused(home, "search", "--image", photo, "--like", "x", reason="not both")
