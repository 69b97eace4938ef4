"""Frame vectors (search by image) in both stores: stored per frame with their model, a scene scored
by its best frame, filters and owners respected, gone with their video."""

from __future__ import annotations

import numpy as np
import pytest

from heimdex.domain import SceneDraft
from heimdex.errors import NotFoundError
from heimdex.store import CommitBundle, FrameVectors, SceneFilter, VectorSet
from tests.store.test_store_contract import table_counts, unit

DIM = 8


def commit_frames(store, owner: str, frames: list[tuple[int, list[float]]], scenes: int = 3, model="img"):
    """A video of `scenes` scenes whose frames are (scene index, vector values)."""
    video = store.add_video(owner, "v.mp4", "k", 1, None)
    drafts = [
        SceneDraft(index=i, start_s=i * 5.0, end_s=i * 5.0 + 5, transcript=f"s{i}") for i in range(scenes)
    ]
    store.commit_video(
        CommitBundle(
            video_id=video.id,
            language="en",
            scenes=drafts,
            text_vectors=VectorSet("m1", np.stack([unit(1.0)] * scenes)),
            faces=[],
            frames=(
                FrameVectors(
                    [i for i, _ in frames],
                    [i * 5.0 + 1 + k for k, (i, _) in enumerate(frames)],
                    VectorSet(model, np.stack([unit(*v) for _, v in frames])),
                ),
            ),
        ),
        {},
    )
    return video, {s.index: s for s in store.list_scenes(owner, video.id)}


def test_a_scene_scores_its_best_frame(store):
    commit_frames(store, "alice", [(0, [1, 0]), (0, [0, 1]), (1, [1, 1]), (2, [0, 0, 1])])
    hits = store.image_search(SceneFilter("alice"), "img", unit(0, 1), 10)
    ranked = [store.scenes_by_pk("alice", [h.scene_pk])[h.scene_pk].index for h in hits]
    assert ranked == [0, 1, 2], "scene 0's second frame is the query itself"
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[1].score == pytest.approx(float(unit(1, 1) @ unit(0, 1)), abs=1e-5)


def test_image_search_keeps_to_the_model_the_filter_and_the_owner(store):
    commit_frames(store, "alice", [(0, [1]), (1, [0, 1])])
    other, _ = commit_frames(store, "alice", [(0, [1])])
    commit_frames(store, "bob", [(0, [1])])
    assert store.image_search(SceneFilter("alice"), "another-model", unit(1), 10) == []
    assert len(store.image_search(SceneFilter("alice"), "img", unit(1), 10)) == 3
    only = store.image_search(SceneFilter("alice", video_ids=(other.id,)), "img", unit(1), 10)
    assert [store.scenes_by_pk("alice", [h.scene_pk])[h.scene_pk].video_id for h in only] == [other.id]
    bob = store.image_search(SceneFilter("bob"), "img", unit(1), 10)
    assert len(bob) == 1 and not store.scenes_by_pk("alice", [bob[0].scene_pk]), "bob's scene is his"
    assert store.image_search(SceneFilter("carol"), "img", unit(1), 10) == []


def test_scene_frame_vectors_are_the_owners_and_go_with_the_video(store):
    video, scenes = commit_frames(store, "alice", [(0, [1]), (0, [0, 1]), (1, [0, 0, 1])])
    got = store.scene_frame_vectors("alice", scenes[0].id, "img")
    assert got.shape == (2, DIM) and np.allclose(got, [unit(1), unit(0, 1)])
    assert store.scene_frame_vectors("alice", scenes[2].id, "img").shape[0] == 0, "a scene without frames"
    with pytest.raises(NotFoundError):
        store.scene_frame_vectors("bob", scenes[0].id, "img")
    assert table_counts(store)["frame_vectors"] == 3
    store.delete_video("alice", video.id)
    assert table_counts(store)["frame_vectors"] == 0
    assert store.image_search(SceneFilter("alice"), "img", unit(1), 10) == []


def test_a_large_owner_gets_the_coarse_pass_with_exact_scores(tmp_path, monkeypatch):
    """Past EXACT_FRAMES, SQLite scores a pool of frames picked in a projection: the scenes it returns
    carry their exact best-frame cosine, and they are nearly all of the exact top 10."""
    from heimdex.store import sqlite

    monkeypatch.setattr(sqlite, "EXACT_FRAMES", 100)
    monkeypatch.setattr(sqlite, "COARSE_DIM", 16)
    monkeypatch.setattr(sqlite, "COARSE_POOL", 60)
    monkeypatch.setattr(sqlite, "_BASIS_SAMPLE", 100)
    store = sqlite.SqliteStore(tmp_path / "h.db")
    rng = np.random.default_rng(3)
    centres = np.maximum(rng.standard_normal((20, 64)), 0)
    frames = np.maximum(centres[rng.integers(0, 20, 400)] + rng.random((400, 64)) * 0.5, 0)
    frames = (frames / np.linalg.norm(frames, axis=1, keepdims=True)).astype(np.float32)
    video = store.add_video("alice", "v.mp4", "k", 1, None)
    drafts = [SceneDraft(index=i, start_s=i * 5.0, end_s=i * 5.0 + 5, transcript="") for i in range(200)]
    store.commit_video(
        CommitBundle(
            video.id,
            "en",
            drafts,
            VectorSet("m1", np.stack([unit(1.0)] * 200)),
            [],
            frames=(
                FrameVectors(
                    [i // 2 for i in range(400)], [i * 2.5 for i in range(400)], VectorSet("img", frames)
                ),
            ),
        ),
        {},
    )
    index_of = {s.id: s.index for s in store.list_scenes("alice", video.id)}
    found = 0
    for query in frames[rng.choice(400, 20, replace=False)] + 0.01:
        query = (query / np.linalg.norm(query)).astype(np.float32)
        exact = (frames @ query).reshape(200, 2).max(axis=1)
        hits = store.image_search(SceneFilter("alice"), "img", query, 10)
        indexes = [index_of[store.scenes_by_pk("alice", [h.scene_pk])[h.scene_pk].id] for h in hits]
        assert len(hits) == 10
        assert np.allclose([h.score for h in hits], exact[indexes], atol=1e-5), "scores are exact"
        found += len(set(indexes) & set(np.argsort(-exact)[:10].tolist()))
    assert found / 200 >= 0.9, found
    store.close()


def test_postgres_frames_have_an_hnsw_index_that_the_graph_walk_uses(postgres_database):
    from heimdex.store.postgres import FRAME, PostgresStore
    from tests import services

    services.empty_database(postgres_database)
    pg = PostgresStore(postgres_database, max_connections=1)  # one connection: SET sticks to it
    try:
        rng = np.random.default_rng(7)
        values = rng.random((60, DIM)).tolist()
        commit_frames(pg, "alice", [(i // 2, v) for i, v in enumerate(values)], scenes=30)
        with pg.db.pool.connection() as conn:
            indexes = [
                r["indexdef"]
                for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'frame_vectors'")
            ]
            assert any("hnsw" in d and f"vector({DIM})" in d and "'img'" in d for d in indexes), indexes
            conn.execute("SET enable_seqscan = off")  # 60 rows: otherwise a scan is cheaper
            statement, params = pg.dense_sql(SceneFilter("alice"), "img", unit(1), 5, True, FRAME)
            plan = "\n".join(
                r["QUERY PLAN"] for r in conn.execute(b"EXPLAIN " + statement.as_bytes(conn), params)
            )
            assert "scene_vectors_hnsw_" in plan, plan
        pg.exact_below = 0  # alice counts as a large owner: the graph walk runs
        query = unit(*values[10])
        walked = pg.image_search(SceneFilter("alice"), "img", query, 10)
        pg.exact_below, pg._large_owners = 10**9, {}  # and forget that alice was large
        exact = pg.image_search(SceneFilter("alice"), "img", query, 10)
        assert walked[0].scene_pk == exact[0].scene_pk and walked[0].score == pytest.approx(1.0, abs=1e-5)
        assert len({h.scene_pk for h in walked} & {h.scene_pk for h in exact}) >= 9
    finally:
        with pg.db.pool.connection() as conn:
            conn.execute("RESET enable_seqscan")
        pg.close()


def test_postgres_graph_walk_asks_again_when_scenes_hold_many_frames(postgres_database):
    """The walk asks for two frame rows a scene first; scenes of four near-identical frames fill
    those rows with half the scenes wanted, so it asks for more: still the exact ranking's scenes."""
    from heimdex.store.postgres import PostgresStore
    from tests import services

    services.empty_database(postgres_database)
    pg = PostgresStore(postgres_database)
    try:
        rng = np.random.default_rng(11)
        looks = rng.random((30, DIM))
        frames = [(i, (looks[i] + rng.random(DIM) * 1e-3).tolist()) for i in range(30) for _ in range(4)]
        commit_frames(pg, "alice", frames, scenes=30)
        query = unit(*looks[3])
        pg.exact_below = 0  # alice counts as a large owner: the graph walk runs
        walked = pg.image_search(SceneFilter("alice"), "img", query, 10)
        pg.exact_below, pg._large_owners = 10**9, {}
        exact = pg.image_search(SceneFilter("alice"), "img", query, 10)
        assert len(walked) == 10 and walked[0].scene_pk == exact[0].scene_pk
        assert len({h.scene_pk for h in walked} & {h.scene_pk for h in exact}) >= 9
    finally:
        pg.close()


def test_a_second_model_fills_in_frame_by_frame_and_the_first_retires(store):
    """Re-embedding's store half: the frames a model lacks, its vectors added (each frame once, only
    to the owner's live scenes), counted per model, and the old model's removed."""
    video, scenes = commit_frames(store, "alice", [(0, [1]), (0, [0, 1]), (1, [0, 0, 1])])
    commit_frames(store, "bob", [(0, [1])])
    assert store.frame_vector_counts("alice") == {"img": 3}
    missing = store.frames_missing("alice", video.id, "new")
    assert [(f.part, f.t_s) for f in missing] == [(0, 1.0), (1, 2.0), (2, 8.0)], "in time order"
    assert store.frames_missing("bob", video.id, "new") == [], "another owner's video"
    assert store.frames_missing("alice", video.id, "img") == []
    first = np.stack([unit(0, 1, dim=4), unit(1, dim=4)])  # another dimension: another model
    assert store.add_frame_vectors("alice", "new", missing[:2], first) == 2
    assert store.add_frame_vectors("bob", "new", missing[2:], unit(1, dim=4)[None]) == 0, "not bob's"
    assert store.add_frame_vectors("alice", "new", missing[:1], first[:1]) == 0, "already there"
    assert store.frame_vector_counts("alice") == {"img": 3, "new": 2}
    assert [f.part for f in store.frames_missing("alice", video.id, "new")] == [2]
    hits = store.image_search(SceneFilter("alice"), "new", unit(1, dim=4), 10)
    found = [store.scenes_by_pk("alice", [h.scene_pk])[h.scene_pk].id for h in hits]
    assert found == [scenes[0].id], "the new model's vectors are searched at once"
    assert np.allclose(store.scene_frame_vectors("alice", scenes[0].id, "new"), first)
    store.add_frame_vectors("alice", "new", missing[2:], unit(0, 0, 1, dim=4)[None])
    assert store.frame_vector_counts("alice") == {"img": 3, "new": 3}
    assert store.delete_frame_vectors("alice", "img") == 3
    assert store.frame_vector_counts("alice") == {"new": 3}
    assert store.frame_vector_counts("bob") == {"img": 1}, "bob's frames stay"
    assert store.image_search(SceneFilter("alice"), "img", unit(1), 10) == []
    assert store.owners() == ["alice", "bob"]


def test_frames_of_a_reprocessed_video_are_not_added(store):
    """A commit replaced the video's scenes (and frames) while their frames were being embedded: the
    vectors of the old frames go nowhere (not an error, even where SQLite gave a new scene an old
    scene's pk), and the new frames are listed as missing."""
    video, _ = commit_frames(store, "alice", [(0, [1]), (1, [0, 1])])
    missing = store.frames_missing("alice", video.id, "new")
    drafts = [SceneDraft(index=i, start_s=i * 5.0, end_s=i * 5.0 + 5, transcript=f"s{i}") for i in range(2)]
    store.commit_video(
        CommitBundle(
            video_id=video.id,
            language="en",
            scenes=drafts,
            text_vectors=VectorSet("m1", np.stack([unit(1.0)] * 2)),
            faces=[],
            frames=(FrameVectors([0, 1], [2.0, 6.0], VectorSet("img", np.stack([unit(1), unit(0, 1)]))),),
        ),
        {},
    )
    assert store.add_frame_vectors("alice", "new", missing, np.stack([unit(1), unit(1)])) == 0
    assert store.frame_vector_counts("alice") == {"img": 2}
    assert len(store.frames_missing("alice", video.id, "new")) == 2


def test_reembedding_reloads_only_that_models_frames(tmp_path):
    """SQLite's caches: adding a second model's frames (a few dozen at a time while re-embedding)
    leaves every other cached matrix valid (the generation is unchanged), yet searches of that
    model see each addition at once; retiring a model reloads only its own frames."""
    from heimdex.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "h.db")
    video, _ = commit_frames(store, "alice", [(0, [1]), (1, [0, 1])])
    assert len(store.image_search(SceneFilter("alice"), "img", unit(1), 10)) == 2  # cached
    generation = store._generation()
    missing = store.frames_missing("alice", video.id, "new")
    store.add_frame_vectors("alice", "new", missing[:1], unit(1)[None])
    assert len(store.image_search(SceneFilter("alice"), "new", unit(1), 10)) == 1
    store.add_frame_vectors("alice", "new", missing[1:], unit(0, 1)[None])
    assert len(store.image_search(SceneFilter("alice"), "new", unit(1), 10)) == 2
    store.delete_frame_vectors("alice", "img")
    assert store.image_search(SceneFilter("alice"), "img", unit(1), 10) == []
    assert store._generation() == generation
    store.close()
