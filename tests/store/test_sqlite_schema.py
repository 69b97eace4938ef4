"""SQLite schema versions: a database made by the previous release opens, upgrades and keeps its data."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from heimdex.accounts.sqlite import SqliteAccountStore
from heimdex.domain import VideoState
from heimdex.errors import HeimdexError
from heimdex.store import SceneFilter
from heimdex.store.sqlite import SCHEMA_VERSION, SqliteStore

FIXTURE = Path(__file__).with_name("fixtures") / "heimdex-0.1.db"
# What the script in fixtures/README.md wrote (the ids it printed).
OWNER, VIDEO, PERSON = "b3dfc68a7a954878", "af465be8c6b249e7", "8183e5ddac4b469f"


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    path = tmp_path / "heimdex.db"
    shutil.copy(FIXTURE, path)
    assert user_version(path) == 0, "the fixture is a database from before schema versions"
    return path


def test_a_database_of_the_previous_release_is_upgraded_with_its_data(old_db: Path):
    store = SqliteStore(old_db)
    assert user_version(old_db) == SCHEMA_VERSION
    video = store.get_video(OWNER, VIDEO)
    assert (video.filename, video.state, video.language, video.scene_count) == (
        "garden.mp4",
        VideoState.INDEXED,
        "en",
        2,
    )
    assert video.info is not None and video.info.duration_s == 20.0, "info_json became info"
    scenes = store.list_scenes(OWNER, VIDEO)
    assert [s.transcript[:18] for s in scenes] == ["the rooftop garden", "the bridge budget "]
    assert [w.text for w in scenes[0].words] == ["the", "rooftop"], "words_json became words"
    assert scenes[1].people == ["Donna"] and scenes[1].possible_people == []
    donna = store.get_person(OWNER, "donna")
    assert (donna.id, donna.photo_count, donna.scene_count) == (PERSON, 1, 1)
    assert [m.verdict for m in store.person_matches(OWNER, PERSON)] == ["confirmed", None]
    # Search still reads the upgraded rows: full text, vectors, windows, tags.
    flt = SceneFilter(owner_id=OWNER)
    (hit,) = store.full_text(flt, ["rooftop"], [], 10)
    assert store.scenes_by_pk(OWNER, [hit.scene_pk])[hit.scene_pk].index == 0
    assert len(store.dense_text(flt, "e5-small", np.ones(8, np.float32) / np.sqrt(8), 10)) == 2
    assert store.scenes_with_labels(flt, {"greenhouse": 1.0}, 10)[0].scene_pk == hit.scene_pk
    faces, vectors = store.face_embeddings(OWNER, "dlib-128")
    assert len(faces) == 2 and vectors.shape == (2, 128), "box_json became box; faces kept"
    # And it takes new work in the new shape.
    store.set_video_state(VIDEO, VideoState.FAILED, "again")
    assert store.get_video(OWNER, VIDEO).error == "again"
    assert store.claim_stage(VIDEO, "commit", "w1", 30.0), "stage_runs took the claim columns"
    assert not store.claim_stage(VIDEO, "commit", "w2", 30.0)
    store.close()
    accounts = SqliteAccountStore(old_db)
    assert accounts.get_user(OWNER).email == "old@example.com", "the accounts in the same file stay"
    accounts.close()


def test_upgrading_twice_or_from_two_processes_changes_nothing_more(old_db: Path):
    SqliteStore(old_db).close()
    with sqlite3.connect(old_db) as db:
        before = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    again = SqliteStore(old_db)
    assert again.get_video(OWNER, VIDEO).scene_count == 2
    again.close()
    with sqlite3.connect(old_db) as db:
        assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before


def test_a_new_database_starts_at_the_newest_version_with_the_same_schema_as_an_upgraded_one(
    tmp_path: Path, old_db: Path
):
    new = tmp_path / "new.db"
    SqliteStore(new).close()
    SqliteStore(old_db).close()
    assert user_version(new) == SCHEMA_VERSION

    def columns(path: Path) -> dict[str, list[str]]:
        with sqlite3.connect(path) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: sorted(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in tables}

    new_columns, old_columns = columns(new), columns(old_db)
    assert {t: c for t, c in old_columns.items() if t in new_columns} == new_columns


def test_a_database_from_a_newer_heimdex_is_refused(tmp_path: Path):
    path = tmp_path / "heimdex.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HeimdexError, match="newer Heimdex"):
        SqliteStore(path)
