"""What only the PostgreSQL store has: migrations (with the SQLite counterpart of each), the HNSW indexes
and their query plans."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from heimdex.db.postgres import head_revision, migrate, schema_revision
from heimdex.domain import Box, FaceObservation, SceneDraft, Tag
from heimdex.errors import HeimdexError
from heimdex.matching import FaceMatch
from heimdex.store import CommitBundle, SceneFilter, VectorSet, WindowVectors
from heimdex.store.postgres import PostgresStore
from tests import services


@pytest.fixture
def pg(postgres_database):
    services.empty_database(postgres_database)
    store = PostgresStore(postgres_database, max_connections=1)
    yield store
    store.close()


def commit_random(
    store: PostgresStore, owner: str, n: int, dim: int, seed: int, model: str = "m"
) -> np.ndarray:
    video = store.add_video(owner, "v.mp4", "k", 1, None)
    vectors = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    scenes = [SceneDraft(index=i, start_s=i, end_s=i + 1, transcript=f"scene {i}") for i in range(n)]
    bundle = CommitBundle(
        video_id=video.id,
        language=None,
        scenes=scenes,
        text_vectors=VectorSet(model, vectors),
        faces=[],
    )
    store.commit_video(bundle, {})
    return vectors


def test_a_database_behind_the_code_is_refused_until_migrated():
    with services.fresh_postgres(migrated=False) as url:
        assert schema_revision(url) is None
        with pytest.raises(HeimdexError, match="heimdex migrate"):
            PostgresStore(url, auto_migrate=False)
        # two servers starting at once: the advisory lock lets one migrate and the other wait
        threads = [threading.Thread(target=migrate, args=(url,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert schema_revision(url) == head_revision()
        PostgresStore(url, auto_migrate=False).close()


def test_an_unreachable_server_is_a_clear_error():
    with pytest.raises(HeimdexError, match="cannot connect to PostgreSQL"):
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/heimdex", auto_migrate=False)


def test_states_are_stored_as_their_values(pg):
    video = pg.add_video("alice", "a.mp4", "k", 1, None)
    pg.stage_started(video.id, "commit")
    with pg.db.pool.connection() as conn:
        assert conn.execute("SELECT state FROM videos").fetchone()["state"] == "queued"
        assert conn.execute("SELECT state FROM stage_runs").fetchone()["state"] == "running"
        with pytest.raises(Exception, match="check"), conn.transaction():
            conn.execute("UPDATE videos SET state = 'QUEUED'")


def test_one_hnsw_index_per_model_and_dimension_and_the_planner_uses_it(pg):
    commit_random(pg, "alice", 20, 8, seed=1, model="small")
    commit_random(pg, "alice", 20, 16, seed=2, model="it's big")  # a quote in a model name is data
    with pg.db.pool.connection() as conn:
        indexes = [
            r["indexdef"]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'scene_vectors' AND indexdef LIKE '%hnsw%'"
            )
        ]
        assert len(indexes) == 2
        assert any("vector(16)" in d and "it''s big" in d for d in indexes)
        statement, params = pg.dense_sql(
            SceneFilter("alice"), "it's big", np.ones(16, np.float32), 5, approximate=True
        )
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")  # 40 rows: otherwise a scan is cheaper
            plan = "\n".join(
                r["QUERY PLAN"] for r in conn.execute(b"EXPLAIN " + statement.as_bytes(conn), params)
            )
    assert "scene_vectors_hnsw_" in plan, plan


def test_filtered_graph_search_still_returns_enough_rows(pg):
    # alice owns 3% of the vectors: a plain HNSW scan with ef_search=100 would find about 3 of hers
    mine = commit_random(pg, "alice", 60, 16, seed=3)
    commit_random(pg, "bob", 2000, 16, seed=4)
    query = mine[5]
    with pg.db.pool.connection() as conn:  # the pool's only connection: the setting sticks to it
        conn.execute("SET enable_seqscan = off")  # force the graph walk, as at scale
    try:
        hits = pg._dense(SceneFilter("alice"), "m", query, 10, approximate=True)
    finally:
        with pg.db.pool.connection() as conn:
            conn.execute("RESET enable_seqscan")
    assert len(hits) == 10
    exact = pg._dense(SceneFilter("alice"), "m", query, 10, approximate=False)
    assert len({h.scene_pk for h in hits} & {h.scene_pk for h in exact}) >= 9
    assert hits[0].scene_pk == exact[0].scene_pk and hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_a_large_owner_is_searched_in_memory_exactly_and_kept_up_to_date(postgres_database) -> None:
    """Owners past exact_below keep their vectors and tags in memory: the same hits as the exact SQL
    scan and the SQL tag query, with or without people named, and a commit or delete by another
    process shows at the next search."""
    services.empty_database(postgres_database)
    reader, writer = PostgresStore(postgres_database), PostgresStore(postgres_database)
    reader.exact_below = 10  # alice's 24 scenes make her a large owner
    ann, ben = writer.add_person("alice", "Ann").id, writer.add_person("alice", "Ben").id
    rng = np.random.default_rng(5)
    labels = ["tabby cat", "kelpie, dog", "street sign"]

    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def commit(n: int) -> str:
        video = writer.add_video("alice", "v.mp4", "k", 1, None)
        scenes = [
            SceneDraft(
                index=i,
                start_s=i,
                end_s=i + 1,
                transcript=f"scene {i}",
                tags=[Tag(label=labels[i % 3], score=float(rng.uniform(0.2, 0.9)), source="imagenet")],
            )
            for i in range(n)
        ]
        windows = WindowVectors([0, 0, 3], VectorSet("m", unit(3)))
        # Ann in every other scene (a sure match, or a possible one: both count), Ben in every third
        seen = [(i, ann, i % 4 == 2) for i in range(0, n, 2)] + [(i, ben, False) for i in range(0, n, 3)]
        box = Box(x=0.1, y=0.1, w=0.2, h=0.2)
        faces = [
            FaceObservation(scene_index=i, t_s=i, box=box, score=0.9, embedding=[1.0] * 128, model="dlib")
            for i, _, _ in seen
        ]
        matches = {k: FaceMatch(person, 0.3, possible) for k, (_, person, possible) in enumerate(seen)}
        writer.commit_video(
            CommitBundle(video.id, None, scenes, VectorSet("m", unit(n)), faces, windows=windows), matches
        )
        return video.id

    def agrees_with_sql() -> None:
        for people in ((), (ann,), (ann, ben)):
            flt = SceneFilter("alice", person_ids=people)
            for query in unit(5):
                memory = reader.dense_text(flt, "m", query, 10)
                exact = reader._dense(flt, "m", query, 10, approximate=False)
                assert [(h.scene_pk, h.window) for h in memory] == [(h.scene_pk, h.window) for h in exact]
                assert [h.score for h in memory] == pytest.approx([h.score for h in exact], abs=1e-5)
            weights = {"tabby cat": 0.9, "kelpie, dog": 0.5}
            everything = SceneFilter("alice", person_ids=people, created_from=0.0)  # a date filter: SQL
            in_memory = reader.scenes_with_labels(flt, weights, 10)
            assert in_memory == reader.scenes_with_labels(everything, weights, 10) and in_memory

    try:
        first = commit(12)
        commit(12)
        commit_random(writer, "bob", 30, 8, seed=9)  # another owner's scenes never appear
        agrees_with_sql()
        assert ("alice", "m", 8) in reader._matrices
        writer.delete_video("alice", first)
        commit(12)
        agrees_with_sql()
        alive = {s.scene_pk for s in reader.dense_text(SceneFilter("alice"), "m", unit(1)[0], 100)}
        assert len(alive) == 24  # the deleted video's scenes are gone
        reader.dense_cache_bytes = 0  # past the memory budget: the graph walk, then exact
        assert len(reader.dense_text(SceneFilter("alice"), "m", unit(1)[0], 5)) == 5
    finally:
        reader.close()
        writer.close()


def test_hnsw_search_breadth_comes_from_the_settings(postgres_database) -> None:
    from heimdex.store import open_store

    default = PostgresStore(postgres_database)
    tuned = open_store(postgres_database, hnsw_ef_search=321)
    try:
        for store, expected in ((default, "800"), (tuned, "321")):
            with store.db.pool.connection() as conn:  # every pooled connection is configured alike
                assert conn.execute("SHOW hnsw.ef_search").fetchone()["hnsw.ef_search"] == expected
    finally:
        default.close()
        tuned.close()


def test_a_worker_frozen_inside_a_transaction_does_not_block_the_others(postgres_database) -> None:
    """A worker stopped (SIGSTOP, a frozen VM) between two statements of a transaction keeps its row
    locks: without a server-side limit, the worker taking its job over would wait on the video's row
    forever. The server ends such a session after the lease, and the frozen transaction's writes are
    lost, not applied late."""
    services.empty_database(postgres_database)
    frozen = PostgresStore(postgres_database, max_connections=1, idle_transaction_timeout_s=1.5)
    other = PostgresStore(postgres_database, max_connections=1, idle_transaction_timeout_s=1.5)
    try:
        video = frozen.add_video("alice", "v.mp4", "k", 1, None)
        assert frozen.claim_stage(video.id, "commit", "frozen-worker", lease_s=0.5)
        holding, wake = threading.Event(), threading.Event()
        outcome: dict[str, object] = {}

        def freeze_mid_transaction() -> None:
            try:
                with frozen.db.tx() as conn:
                    conn.execute("UPDATE videos SET error = 'late write' WHERE id = ?", (video.id,))
                    holding.set()
                    wake.wait(30)  # frozen: the transaction stays open, idle
                outcome["frozen"] = "committed"
            except Exception as exc:  # the server ended the session
                outcome["frozen"] = type(exc).__name__

        def take_over() -> None:
            outcome["claimed"] = other.claim_stage(video.id, "commit", "other-worker", lease_s=30)

        freezer = threading.Thread(target=freeze_mid_transaction, daemon=True)
        freezer.start()
        assert holding.wait(10)
        time.sleep(0.6)  # the frozen worker's claim has expired; its row lock has not
        started = time.monotonic()
        taker = threading.Thread(target=take_over, daemon=True)
        taker.start()
        taker.join(15)
        waited = time.monotonic() - started
        wake.set()
        freezer.join(15)
        assert not taker.is_alive(), "the claim waited on the frozen transaction's lock"
        assert outcome["claimed"] is True and waited < 6, waited
        assert outcome["frozen"] != "committed"
        now = other.get_video(video.owner_id, video.id)
        assert now.claimed_by == "other-worker" and now.error is None
        assert frozen.get_video(video.owner_id, video.id).claimed_by == "other-worker", "its pool recovers"
    finally:
        frozen.close()
        other.close()


def _one_sure_match(store) -> tuple[str, SceneFilter]:
    video = store.add_video("alice", "v.mp4", "k", 1, None)
    donna = store.add_person("alice", "Donna")
    face = FaceObservation(
        scene_index=0,
        t_s=1.0,
        box=Box(x=0.1, y=0.1, w=0.2, h=0.2),
        score=0.9,
        embedding=[1.0] * 128,
        model="dlib",
    )
    vectors = np.eye(1, 8, dtype=np.float32)
    bundle = CommitBundle(
        video_id=video.id,
        language=None,
        scenes=[SceneDraft(index=0, start_s=0, end_s=1, transcript="hello")],
        text_vectors=VectorSet("m", vectors),
        faces=[face],
    )
    store.commit_video(bundle, {0: FaceMatch(donna.id, 0.3)})
    return donna.id, SceneFilter("alice", person_ids=(donna.id,))


def _assert_one_sure_match(store, person_id: str, flt: SceneFilter) -> None:
    (scene,) = store.scenes_with_people(flt, 10)
    assert store.scenes_by_pk("alice", [scene.scene_pk])[scene.scene_pk].people == ["Donna"]
    (match,) = store.person_matches("alice", person_id)
    assert not match.possible and match.verdict is None


def test_migration_0005_keeps_face_matches_as_sure_and_downgrades(postgres_database) -> None:
    from alembic import command

    from heimdex.db.postgres import alembic_config as _alembic_config

    services.empty_database(postgres_database)
    store = PostgresStore(postgres_database)
    try:
        person_id, flt = _one_sure_match(store)
        command.downgrade(_alembic_config(store.url), "0004")  # a database from before possible matches
        with store.db.pool.connection() as conn:
            columns = {
                r["column_name"]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'face_matches'"
                )
            }
        assert columns == {"face_pk", "person_id", "distance"}
        command.upgrade(_alembic_config(store.url), "head")
        _assert_one_sure_match(store, person_id, flt)
    finally:
        store.close()


def test_sqlite_database_from_before_possible_matches_is_upgraded(tmp_path) -> None:
    from heimdex.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "old.db")
    person_id, flt = _one_sure_match(store)
    with store.db.tx() as db:  # what an older Heimdex made: no possible / verdict columns, no version
        db.execute("ALTER TABLE face_matches DROP COLUMN verdict")
        db.execute("ALTER TABLE face_matches DROP COLUMN possible")
        db.execute("PRAGMA user_version = 0")
    store.close()
    store = SqliteStore(tmp_path / "old.db")
    try:
        _assert_one_sure_match(store, person_id, flt)
    finally:
        store.close()


def test_an_owners_words_are_listed_at_commit_and_kept_after_a_delete(postgres_database) -> None:
    """vocabulary() reads owner_lexemes, filled after each commit: the same lexemes ts_stat finds in
    the owner's scenes, another owner's never; a deleted video's stay listed (search keeps only the
    near words a scene still holds). Two commits of one owner at once, with the same words, do not
    deadlock on them."""
    services.empty_database(postgres_database)
    store = PostgresStore(postgres_database)

    def commit(owner: str, texts: list[str]) -> str:
        video = store.add_video(owner, "v.mp4", "k", 1, None)
        scenes = [SceneDraft(index=i, start_s=i, end_s=i + 1, transcript=t) for i, t in enumerate(texts)]
        vectors = np.eye(len(texts), 8, dtype=np.float32)
        store.commit_video(CommitBundle(video.id, "en", scenes, VectorSet("m", vectors), []), {})
        return video.id

    def scanned(owner: str) -> set[str]:
        rows = store.db.all(
            "SELECT word FROM ts_stat(format('SELECT fts FROM scenes WHERE owner_id = %L', ?::text))",
            (owner,),
        )
        return {r["word"] for r in rows}

    try:
        first = commit("alice", ["The lighthouse keepers were singing", "a harbour at dawn"])
        commit("bob", ["Bob's own zeppelin"])
        assert set(store.vocabulary("alice")) == scanned("alice") and "zeppelin" not in scanned("alice")
        commit("alice", ["sailing boats"])
        assert set(store.vocabulary("alice")) == scanned("alice") >= {"sail", "lighthous"}
        store.delete_video("alice", first)
        assert set(store.vocabulary("alice")) > scanned("alice"), "a deleted video's words stay listed"
        errors: list[BaseException] = []

        def commit_often() -> None:
            try:
                for k in range(6):
                    commit("carol", [f"words shared by both writers {w}" for w in ("one", "two", str(k))])
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=commit_often) for _ in range(2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(60)
        assert errors == [] and set(store.vocabulary("carol")) == scanned("carol")
    finally:
        store.close()
