"""The Store contract, run against every backend (the `store` fixture in tests/conftest.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from heimdex.domain import (
    Box,
    FaceObservation,
    MediaInfo,
    SceneDraft,
    StageState,
    Tag,
    VideoState,
    Word,
    piece_key,
)
from heimdex.errors import ConflictError, NotFoundError
from heimdex.korean import index_terms, morphemes
from heimdex.matching import FaceMatch
from heimdex.pipeline.graph import STAGES
from heimdex.store import CommitBundle, SceneFilter, Store, VectorSet, WindowVectors

DIM = 8
TABLES = (
    "videos",
    "stage_runs",
    "scenes",
    "scene_vectors",
    "scene_windows",
    "frame_vectors",
    "scene_tags",
    "label_vectors",
    "faces",
    "people",
    "person_photos",
    "face_matches",
)


def unit(*values: float, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def commit(
    store,
    video_id,
    texts,
    vectors,
    tags=(),
    faces=(),
    matches=None,
    model="m1",
    ocr=(),
    labels=None,
    windows=None,
):
    scenes = [
        SceneDraft(
            index=i,
            start_s=i * 5.0,
            end_s=i * 5.0 + 5,
            transcript=t,
            ocr_text=ocr[i] if i < len(ocr) else "",
            tags=list(tags[i]) if i < len(tags) else [],
        )
        for i, t in enumerate(texts)
    ]
    dim = len(vectors[0]) if len(vectors) else DIM
    store.commit_video(
        CommitBundle(
            video_id=video_id,
            language="en",
            scenes=scenes,
            text_vectors=VectorSet(model, np.array(vectors, dtype=np.float32).reshape(-1, dim)),
            faces=list(faces),
            label_vectors={"tabby cat": unit(0, 0, 1)} if labels is None else labels,
            windows=None
            if windows is None
            else WindowVectors([i for i, _ in windows], VectorSet(model, np.array([v for _, v in windows]))),
        ),
        matches or {},
    )


def face(scene_index: int, value: float = 1.0) -> FaceObservation:
    return FaceObservation(
        scene_index=scene_index,
        t_s=scene_index * 5.0 + 1,
        box=Box(x=0.1, y=0.1, w=0.2, h=0.2),
        score=0.9,
        embedding=[value] * 128,
        model="dlib",
    )


def scene_of(store, hit, owner="alice"):
    return store.scenes_by_pk(owner, [hit.scene_pk])[hit.scene_pk]


def videos_of(store, hits, owner="alice") -> list[str]:
    return [scene_of(store, h, owner).video_id for h in hits]


def table_counts(store: Store) -> dict[str, int]:
    """Rows per table, straight from the backend: the interface cannot see orphans."""
    return {t: store.db.one(f"SELECT count(*) AS n FROM {t}")["n"] for t in TABLES}


# ---------------------------------------------------------------- videos and the ledger


def test_video_lifecycle_and_ledger(store):
    v = store.add_video("alice", "a.mp4", "videos/{video_id}/original.mp4", 10, "abc")
    assert v.original_key == f"videos/{v.id}/original.mp4" and v.state == VideoState.QUEUED
    assert store.find_video_by_hash("alice", "abc").id == v.id
    assert store.find_video_by_hash("bob", "abc") is None
    store.stage_started(v.id, "asr_fast")
    store.stage_failed(v.id, "asr_fast", 1.5, "boom")
    store.stage_started(v.id, "asr_fast")
    store.stage_done(v.id, "asr_fast", 2.0)
    (record,) = store.stage_records(v.id)
    assert (record.state, record.attempts, record.duration_s, record.error) == (StageState.DONE, 2, 2.0, None)
    with pytest.raises(NotFoundError):
        store.get_video("bob", v.id)
    with pytest.raises(NotFoundError):
        store.get_video("alice", "nope")
    assert store.job_video(v.id).owner_id == "alice", "the job ledger reads by id, whoever owns it"


def test_a_page_of_videos_in_one_call_holds_only_the_owners(store):
    a, b = (store.add_video("alice", f"{n}.mp4", "k", 1, None) for n in "ab")
    bobs = store.add_video("bob", "c.mp4", "k", 1, None)
    got = store.get_videos("alice", [a.id, b.id, a.id, bobs.id, "nope"])
    assert sorted(got) == sorted([a.id, b.id]) and got[a.id] == store.get_video("alice", a.id)
    assert store.get_videos("bob", [a.id]) == {} and store.get_videos("alice", []) == {}


@pytest.mark.parametrize("state", list(VideoState))
def test_every_video_state_round_trips(store, state):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    other = store.add_video("alice", "b.mp4", "k", 1, None)
    store.set_video_state(v.id, state, error="why" if state == VideoState.FAILED else None)
    got = store.get_video(v.owner_id, v.id)
    assert got.state is state and got.state.value == state.value
    assert got.error == ("why" if state == VideoState.FAILED else None)
    wanted = [v.id] if state != VideoState.QUEUED else [v.id, other.id]
    assert [x.id for x in store.list_videos("alice", state=state)] == wanted
    assert store.list_videos("bob", state=state) == []


def test_every_stage_state_round_trips_and_reset(store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    before = time.time()
    store.stage_started(v.id, "scene_detect")
    running = {r.stage: r for r in store.stage_records(v.id)}["scene_detect"]
    assert running.state is StageState.RUNNING and running.attempts == 1 and running.started_at >= before - 1
    assert running.finished_at is None and running.duration_s is None
    store.stage_failed(v.id, "scene_detect", 0.5, "decoder exploded")
    failed = store.stage_records(v.id)[0]
    assert (failed.state, failed.error, failed.duration_s) == (StageState.FAILED, "decoder exploded", 0.5)
    assert failed.finished_at >= failed.started_at
    store.stage_started(v.id, "scene_detect")  # a retry clears the error and counts the attempt
    retry = store.stage_records(v.id)[0]
    assert (retry.state, retry.error, retry.attempts) == (StageState.RUNNING, None, 2)
    for stage in STAGES:
        store.stage_started(v.id, stage)
        store.stage_done(v.id, stage, 1.0)
    records = store.stage_records(v.id)
    assert sorted(r.stage for r in records) == sorted(STAGES)
    assert all(r.state is StageState.DONE for r in records)
    with pytest.raises(NotFoundError):
        store.requeue_video("bob", v.id)
    assert len(store.video_stages("alice", v.id)) == len(STAGES)
    store.set_video_state(v.id, VideoState.FAILED, "boom")
    requeued = store.requeue_video("alice", v.id)
    assert (requeued.state, requeued.error) == (VideoState.QUEUED, None)
    assert store.stage_records(v.id) == [] and store.video_stages("alice", v.id) == []
    with pytest.raises(NotFoundError):
        store.video_stages("bob", v.id)


def test_media_info_and_hash_lookup(store):
    info = MediaInfo(
        container="mp4",
        duration_s=12.5,
        width=1920,
        height=1080,
        fps=29.97,
        video_codec="h264",
        audio_codec="aac",
        has_audio=True,
        rotation=90,
        size_bytes=12345,
    )
    first = store.add_video("alice", "a.mp4", "k", 1, "same")
    store.add_video("alice", "b.mp4", "k", 1, "same")
    store.set_video_info(first.id, info)
    assert store.get_video(first.owner_id, first.id).info == info
    assert store.find_video_by_hash("alice", "same").id == first.id  # the earliest one
    assert [v.filename for v in store.list_videos("alice")] == ["a.mp4", "b.mp4"]


# ---------------------------------------------------------------- commit and scenes


def test_commit_is_searchable_by_text_and_vector_and_replaces_on_recommit(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(
        store,
        v.id,
        ["the bridge budget vote", "a cat on a mat"],
        [unit(1, 0), unit(0, 1)],
        tags=[[], [Tag(label="tabby cat", score=0.8, source="imagenet")]],
    )
    flt = SceneFilter(owner_id="alice")
    (hit,) = store.full_text(flt, ["budgets"], [], 10)  # stemming
    assert store.scenes_by_pk("alice", [hit.scene_pk])[hit.scene_pk].index == 0
    dense = store.dense_text(flt, "m1", unit(0, 1), 10)
    assert store.scenes_by_pk("alice", [dense[0].scene_pk])[dense[0].scene_pk].index == 1
    assert dense[0].score == pytest.approx(1.0, abs=1e-5) and dense[1].score == pytest.approx(0.0, abs=1e-5)
    assert store.dense_text(flt, "another-model", unit(0, 1), 10) == []  # models never mix
    labels, matrix = store.label_vectors("m1")
    assert labels == ["tabby cat"] and matrix.shape == (1, DIM)
    assert np.allclose(matrix[0], unit(0, 0, 1))
    (tagged,) = store.scenes_with_labels(flt, {"tabby cat": 0.9}, 10)
    assert tagged.score == pytest.approx(0.72)
    assert (
        store.get_video(v.owner_id, v.id).state == VideoState.INDEXED
        and store.get_video(v.owner_id, v.id).scene_count == 2
    )

    commit(store, v.id, ["only one scene now"], [unit(1, 1)])
    assert [s.transcript for s in store.list_scenes(v.owner_id, v.id)] == ["only one scene now"]
    assert store.full_text(flt, ["bridge"], [], 10) == []  # old text gone from the index
    assert len(store.dense_text(flt, "m1", unit(1, 0), 10)) == 1  # and old vectors from the cache


def test_scene_round_trip(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    draft = SceneDraft(
        index=3,
        start_s=1.25,
        end_s=4.5,
        transcript="hello there",
        words=[
            Word(text="hello", start_s=1.25, end_s=1.6, probability=0.9),
            Word(text="there", start_s=1.7, end_s=2.0),
        ],
        ocr_text="EXIT 12",
        tags=[Tag(label="road", score=0.4, source="coco"), Tag(label="car", score=0.9, source="imagenet")],
        thumbnail_key="thumbs/x.jpg",
        sidecar_key="sidecars/x.json",
    )
    store.commit_video(
        CommitBundle(
            video_id=v.id,
            language="ko",
            scenes=[draft],
            text_vectors=VectorSet("m1", unit(1)[None, :]),
            faces=[],
        ),
        {},
    )
    (scene,) = store.list_scenes(v.owner_id, v.id)
    assert scene.id == f"{v.id}-0003" and scene.video_id == v.id and scene.index == 3
    assert (scene.start_s, scene.end_s, scene.transcript, scene.ocr_text) == (
        1.25,
        4.5,
        "hello there",
        "EXIT 12",
    )
    assert scene.words == draft.words
    assert [t.label for t in scene.tags] == ["car", "road"]  # best tag first
    assert scene.tags[0] == Tag(label="car", score=0.9, source="imagenet")
    assert (scene.thumbnail_key, scene.sidecar_key, scene.people) == ("thumbs/x.jpg", "sidecars/x.json", [])
    assert store.get_video(v.owner_id, v.id).language == "ko"
    assert store.scenes_by_pk("alice", []) == {} and store.scenes_by_pk("alice", [10**9]) == {}


def test_commit_rejects_mismatched_vectors(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    with pytest.raises(ValueError):
        commit(store, v.id, ["one", "two"], [unit(1)])
    assert (
        store.list_scenes(v.owner_id, v.id) == []
        and store.get_video(v.owner_id, v.id).state == VideoState.QUEUED
    )


def test_recommit_leaves_no_orphans_in_any_table(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna = store.add_person("alice", "Donna")
    tags = [
        [Tag(label="tabby cat", score=0.8, source="imagenet")],
        [Tag(label="dog", score=0.5, source="coco")],
    ]
    commit(
        store,
        v.id,
        ["first scene", "second scene"],
        [unit(1), unit(0, 1)],
        tags=tags,
        faces=[face(0), face(1), face(1, 0.5)],
        matches={0: FaceMatch(donna.id, 0.1), 2: FaceMatch(donna.id, 0.3)},
        windows=[(1, unit(0, 1, 1)), (1, unit(0, 1, 0, 1))],
    )
    once = table_counts(store)
    assert once["scene_windows"] == 2
    commit(
        store,
        v.id,
        ["first scene", "second scene"],
        [unit(1), unit(0, 1)],
        tags=tags,
        faces=[face(0), face(1), face(1, 0.5)],
        matches={0: FaceMatch(donna.id, 0.1), 2: FaceMatch(donna.id, 0.3)},
        windows=[(1, unit(0, 1, 1)), (1, unit(0, 1, 0, 1))],
    )
    assert table_counts(store) == once  # the same bundle twice: nothing piles up
    commit(store, v.id, ["just one"], [unit(1)])
    counts = table_counts(store)
    assert counts == {
        **once,
        "scenes": 1,
        "scene_vectors": 1,
        "scene_windows": 0,
        "scene_tags": 0,
        "faces": 0,
        "face_matches": 0,
    }
    # (no check on the old scene pks: SQLite reuses the highest rowid once it is deleted)
    assert [s.transcript for s in store.list_scenes(v.owner_id, v.id)] == ["just one"]
    assert store.scenes_with_labels(SceneFilter(owner_id="alice"), {"dog": 1.0}, 10) == []
    assert store.get_person("alice", donna.id).scene_count == 0


def test_delete_video_removes_everything(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    keep = store.add_video("alice", "b.mp4", "k", 1, "h2")
    donna = store.add_person("alice", "Donna")
    commit(
        store,
        v.id,
        ["words"],
        [unit(1)],
        faces=[face(0)],
        matches={0: FaceMatch(donna.id, 0.2)},
        tags=[[Tag(label="tabby cat", score=0.8, source="imagenet")]],
    )
    commit(store, keep.id, ["other words"], [unit(1)])
    store.stage_started(v.id, "commit")
    kept = table_counts(store)
    store.delete_video(v.owner_id, v.id)
    assert [x.id for x in store.list_videos("alice")] == [keep.id] and store.stage_records(v.id) == []
    assert videos_of(store, store.full_text(SceneFilter(owner_id="alice"), ["words"], [], 10)) == [keep.id]
    assert store.face_embeddings("alice", "dlib")[0] == []
    assert store.scene_count("alice") == 1
    after = table_counts(store)
    assert after == {
        **kept,
        "videos": 1,
        "stage_runs": 0,
        "scenes": 1,
        "scene_vectors": 1,
        "scene_tags": 0,
        "faces": 0,
        "face_matches": 0,
    }
    with pytest.raises(NotFoundError):
        store.get_video(v.owner_id, v.id)


# ---------------------------------------------------------------- full text


def test_phrases_are_required(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(store, v.id, ["bridge repair budget", "budget for the bridge"], [unit(1), unit(1)])
    hits = store.full_text(SceneFilter(owner_id="alice"), ["repair"], ["bridge repair"], 10)
    assert len(hits) == 1
    assert store.full_text(SceneFilter(owner_id="alice"), [], ["repair bridge"], 10) == []


def test_loose_terms_are_ored_and_rank_by_matches(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(
        store,
        v.id,
        ["the harbour at night", "harbour lights and night boats", "a quiet field"],
        [unit(1), unit(1), unit(1)],
    )
    hits = store.full_text(SceneFilter(owner_id="alice"), ["harbour", "boats", "lights"], [], 10)
    assert [scene_of(store, h).index for h in hits] == [1, 0]
    assert hits[0].score > hits[1].score
    assert store.full_text(SceneFilter(owner_id="alice"), ["   "], [" "], 10) == []


def test_phrase_with_terms_ranks_the_scenes_that_have_both_first(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(
        store,
        v.id,
        ["city council met today", "city council approved the housing plan", "housing"],
        [unit(1), unit(1), unit(1)],
    )
    hits = store.full_text(SceneFilter(owner_id="alice"), ["housing"], ["city council"], 10)
    assert [scene_of(store, h).index for h in hits] == [1, 0]


def test_a_loose_term_of_two_words_is_a_phrase(store):
    """A compound the library writes apart (search/spelling.py) is searched as its two words side by
    side, on both backends alike."""
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(store, v.id, ["the hose pipe ban is lifted", "a pipe and a garden hose"], [unit(1), unit(1)])
    flt = SceneFilter(owner_id="alice")
    assert [scene_of(store, h).index for h in store.full_text(flt, ["hose pipe", "absent"], [], 10)] == [0]
    assert store.term_counts("alice", ["hose pipe", "pipe hose"], 10) == {"hose pipe": 1, "pipe hose": 0}


def test_full_text_covers_on_screen_text_and_tags(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(
        store,
        v.id,
        ["", "", "nothing here"],
        [unit(1), unit(1), unit(1)],
        ocr=["FARMERS MARKET SATURDAY"],
        tags=[[], [Tag(label="motorcycle", score=0.7, source="coco")]],
    )
    flt = SceneFilter(owner_id="alice")
    assert [scene_of(store, h).index for h in store.full_text(flt, ["farmers"], [], 10)] == [0]
    assert [scene_of(store, h).index for h in store.full_text(flt, ["motorcycles"], [], 10)] == [1]


def test_scene_texts_and_term_counts_feed_fusion(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    other = store.add_video("bob", "b.mp4", "k", 1, "h2")
    commit(
        store,
        v.id,
        ["the bridge budget", "a bridge at night", "nothing here"],
        [unit(1), unit(1), unit(1)],
        ocr=["FARMERS MARKET"],
        tags=[[], [Tag(label="motorcycle", score=0.7, source="coco")]],
    )
    commit(store, other.id, ["bridge bridge bridge"], [unit(1)])
    pks = [h.scene_pk for h in store.full_text(SceneFilter(owner_id="alice"), ["bridge"], [], 10)]
    texts = store.scene_texts("alice", pks)
    assert sorted(texts.values()) == ["a bridge at night\nmotorcycle", "the bridge budget\nFARMERS MARKET"]
    # counted in the owner's own scenes only (bob's scene is not alice's evidence), up to the cap
    assert store.term_counts("alice", ["bridges", "market", "absent"], 1000) == {
        "bridges": 2,
        "market": 1,
        "absent": 0,
    }
    assert store.term_counts("alice", ["bridge"], 1) == {"bridge": 1}
    assert store.scene_count("alice") == 3 and store.scene_count("bob") == 1
    store.delete_video(other.owner_id, other.id)
    assert store.scene_count("bob") == 0  # the count follows deletions


def test_full_text_matches_non_english_words_and_folds_diacritics(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    commit(
        store,
        v.id,
        ["서울 시청 앞 광장에서 축제가 열렸다", "Meet me at the café on Müllerstraße", "the who played"],
        [unit(1), unit(1), unit(1)],
    )
    flt = SceneFilter(owner_id="alice")
    assert [scene_of(store, h).index for h in store.full_text(flt, ["광장에서"], [], 10)] == [0]
    assert [scene_of(store, h).index for h in store.full_text(flt, ["서울"], [], 10)] == [0]
    assert [scene_of(store, h).index for h in store.full_text(flt, ["cafe"], [], 10)] == [1]
    assert [scene_of(store, h).index for h in store.full_text(flt, ["café"], [], 10)] == [1]
    assert [scene_of(store, h).index for h in store.full_text(flt, [], ["the who"], 10)] == [2]  # stop words


def test_korean_morphemes_match_whatever_the_particles_and_endings(store):
    """Transcripts and on-screen text carry their Korean morphemes (`index_terms`, as commit stores
    them); a query's Korean words are searched as theirs, so "정원에서" finds "정원을" in both stores."""
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    texts = ["옥상에 정원을 가꾼 손님이 왔다", "", "the garden on the roof"]
    ocr = ["", "로켓 발사 준비 완료", ""]
    scenes = [
        SceneDraft(index=i, start_s=i * 5.0, end_s=i * 5.0 + 5, transcript=t, ocr_text=o,
                   index_terms=index_terms(t, o))
        for i, (t, o) in enumerate(zip(texts, ocr, strict=True))
    ]  # fmt: skip
    store.commit_video(
        CommitBundle(
            video_id=v.id,
            language="ko",
            scenes=scenes,
            text_vectors=VectorSet("m1", np.array([unit(1), unit(0, 1), unit(0, 0, 1)], dtype=np.float32)),
            faces=[],
            label_vectors={},
        ),
        {},
    )
    flt = SceneFilter(owner_id="alice")

    def found(query: str) -> list[int]:
        return [scene_of(store, h).index for h in store.full_text(flt, morphemes(query), [], 10)]

    assert found("정원에서") == [0] and found("가꾸는 손님") == [0], "a transcript's nouns and verbs"
    assert found("발사를") == [1] and found("준비가") == [1], "on-screen text"
    assert found("정원") == [0] and found("옥상") == [0]
    assert found("우주") == [], "a word that is nowhere"
    assert store.term_counts("alice", morphemes("로켓이"), 5) == {"로켓": 1}


# ---------------------------------------------------------------- filters


def _three_videos(store) -> tuple[list, list[float]]:
    videos, stamps = [], []
    for i in range(3):
        v = store.add_video("alice", f"{i}.mp4", "k", 1, f"h{i}")
        commit(
            store,
            v.id,
            [f"harbour scene {i}", "unrelated"],
            [unit(1, i * 0.1), unit(0, 1)],
            tags=[[Tag(label="boat", score=0.5 + i * 0.1, source="coco")], []],
        )
        videos.append(v)
        stamps.append(store.get_video(v.owner_id, v.id).created_at)
        time.sleep(0.01)  # distinct creation times
    return videos, stamps


def test_filters_by_video_ids_on_every_channel(store):
    videos, _ = _three_videos(store)
    wanted = {videos[0].id, videos[2].id}
    flt = SceneFilter(owner_id="alice", video_ids=tuple(wanted))
    assert set(videos_of(store, store.full_text(flt, ["harbour"], [], 10))) == wanted
    dense = store.dense_text(flt, "m1", unit(1), 10)
    assert len(dense) == 4 and set(videos_of(store, dense)) == wanted
    assert set(videos_of(store, store.scenes_with_labels(flt, {"boat": 1.0}, 10))) == wanted
    assert store.dense_text(SceneFilter(owner_id="bob", video_ids=(videos[0].id,)), "m1", unit(1), 10) == []


def test_filters_by_created_range_on_every_channel(store):
    videos, stamps = _three_videos(store)
    middle = SceneFilter(owner_id="alice", created_from=stamps[1], created_to=stamps[1])
    assert videos_of(store, store.full_text(middle, ["harbour"], [], 10)) == [videos[1].id]
    assert set(videos_of(store, store.dense_text(middle, "m1", unit(1), 10))) == {videos[1].id}
    assert videos_of(store, store.scenes_with_labels(middle, {"boat": 1.0}, 10)) == [videos[1].id]
    later = SceneFilter(owner_id="alice", created_from=stamps[1])
    assert set(videos_of(store, store.full_text(later, ["harbour"], [], 10))) == {videos[1].id, videos[2].id}
    earlier = SceneFilter(owner_id="alice", created_to=stamps[1])
    assert set(videos_of(store, store.dense_text(earlier, "m1", unit(1), 10))) == {videos[0].id, videos[1].id}


def test_dense_search_is_ranked_and_limited_under_a_filter(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    other = store.add_video("alice", "b.mp4", "k", 1, "h2")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    commit(store, v.id, [f"s{i}" for i in range(40)], vectors)
    commit(store, other.id, [f"o{i}" for i in range(40)], vectors)
    query = vectors[7]
    hits = store.dense_text(SceneFilter(owner_id="alice", video_ids=(v.id,)), "m1", query, 5)
    expected = np.argsort(-(vectors @ query))[:5]
    assert [scene_of(store, h).index for h in hits] == list(expected)
    assert set(videos_of(store, hits)) == {v.id}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(store.dense_text(SceneFilter(owner_id="alice"), "m1", query, 15)) == 15


def test_models_and_dimensions_never_mix(store):
    a = store.add_video("alice", "a.mp4", "k", 1, "h")
    b = store.add_video("alice", "b.mp4", "k", 1, "h2")
    commit(store, a.id, ["eight"], [unit(1)], model="m8")
    commit(store, b.id, ["four"], [unit(1, dim=4)], model="m4", labels={"tabby cat": unit(1, dim=4)})
    flt = SceneFilter(owner_id="alice")
    assert videos_of(store, store.dense_text(flt, "m8", unit(1), 10)) == [a.id]
    assert videos_of(store, store.dense_text(flt, "m4", unit(1, dim=4), 10)) == [b.id]
    assert store.dense_text(flt, "m8", unit(1, dim=4), 10) == []  # wrong dimension for the model
    assert store.label_vectors("m4")[1].shape == (1, 4) and store.label_vectors("m8")[1].shape == (1, DIM)


def test_label_search_scores_by_best_weighted_tag(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    tags = [
        [Tag(label="tabby cat", score=0.9, source="imagenet"), Tag(label="kitten", score=0.5, source="clip")],
        [Tag(label="kitten", score=0.8, source="clip")],
        [Tag(label="dog", score=1.0, source="coco")],
    ]
    commit(store, v.id, ["a", "b", "c"], [unit(1), unit(1), unit(1)], tags=tags)
    flt = SceneFilter(owner_id="alice")
    hits = store.scenes_with_labels(flt, {"tabby cat": 0.5, "kitten": 1.0}, 10)
    assert [(scene_of(store, h).index, round(h.score, 4)) for h in hits] == [(1, 0.8), (0, 0.5)]
    assert len(store.scenes_with_labels(flt, {"tabby cat": 0.5, "kitten": 1.0}, 1)) == 1
    assert store.scenes_with_labels(flt, {}, 10) == []
    assert store.scenes_with_labels(SceneFilter(owner_id="bob"), {"dog": 1.0}, 10) == []


def test_owners_are_isolated(store):
    a = store.add_video("alice", "a.mp4", "k", 1, "h1")
    b = store.add_video("bob", "b.mp4", "k", 1, "h2")
    commit(store, a.id, ["secret plans"], [unit(1)], tags=[[Tag(label="map", score=1.0, source="coco")]])
    commit(store, b.id, ["public plans"], [unit(1)], tags=[[Tag(label="map", score=1.0, source="coco")]])
    bob = SceneFilter(owner_id="bob")
    assert videos_of(store, store.full_text(bob, ["plans"], [], 10), "bob") == [b.id]
    assert set(videos_of(store, store.dense_text(bob, "m1", unit(1), 10), "bob")) == {b.id}
    assert videos_of(store, store.scenes_with_labels(bob, {"map": 1.0}, 10), "bob") == [b.id]
    assert [v.id for v in store.list_videos("bob")] == [b.id]
    assert store.scene_count("bob") == 1 and store.scene_count("carol") == 0


def test_every_owner_scoped_call_refuses_another_owners_rows(store):
    a = store.add_video("alice", "a.mp4", "k", 1, "h1")
    donna = store.add_person("alice", "Donna")
    commit(store, a.id, ["secret plans"], [unit(1)], faces=[face(0)], matches={0: FaceMatch(donna.id, 0.2)})
    (scene,) = store.list_scenes("alice", a.id)
    pk = store.full_text(SceneFilter(owner_id="alice"), ["plans"], [], 10)[0].scene_pk
    assert store.get_scene("alice", scene.id) == scene
    for call in (
        lambda: store.get_video("bob", a.id),
        lambda: store.get_scene("bob", scene.id),
        lambda: store.video_stages("bob", a.id),
        lambda: store.requeue_video("bob", a.id),
        lambda: store.delete_video("bob", a.id),
        lambda: store.add_person_photo("bob", donna.id, "people/x.jpg", "dlib", np.ones(128, np.float32)),
        lambda: store.replace_person_matches("bob", donna.id, []),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert store.list_scenes("bob", a.id) == []
    assert store.scenes_by_pk("bob", [pk]) == {} and store.scene_texts("bob", [pk]) == {}
    assert store.get_video("alice", a.id).state == VideoState.INDEXED, "nothing above changed it"
    assert store.person_matches("alice", donna.id)[0].distance == 0.2
    # A person's matches only ever link the owner's own faces, whatever face pks a caller passes.
    b = store.add_video("bob", "b.mp4", "k", 1, "h2")
    commit(store, b.id, ["other plans"], [unit(1)], faces=[face(0)])
    (bob_face,) = store.face_embeddings("bob", "dlib")[0]
    store.replace_person_matches("alice", donna.id, [(bob_face, 0.1, False)])
    assert (
        store.person_matches("alice", donna.id) == [] and store.get_person("alice", donna.id).scene_count == 0
    )
    # a video id of someone else's does not widen the filter
    assert store.full_text(SceneFilter(owner_id="bob", video_ids=(a.id,)), ["plans"], [], 10) == []


# ---------------------------------------------------------------- people


def test_people_faces_and_matches(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna = store.add_person("alice", "Donna")
    with pytest.raises(ConflictError):
        store.add_person("alice", "donna")
    store.add_person_photo("alice", donna.id, "people/x.jpg", "dlib", np.ones(128, np.float32))
    commit(
        store,
        v.id,
        ["hello", "rooftop garden"],
        [unit(1), unit(0, 1)],
        faces=[face(1)],
        matches={0: FaceMatch(donna.id, 0.1)},
    )
    flt = SceneFilter(owner_id="alice", person_ids=(donna.id,))
    (scene,) = store.scenes_with_people(flt, 10)
    assert scene.score == pytest.approx(0.9)
    assert store.scenes_by_pk("alice", [scene.scene_pk])[scene.scene_pk].people == ["Donna"]
    assert len(store.full_text(flt, ["rooftop", "hello"], [], 10)) == 1  # the person filters text hits
    assert len(store.dense_text(flt, "m1", unit(1), 10)) == 1  # and vector hits
    assert store.get_person("alice", "DONNA").scene_count == 1
    pks, vectors = store.face_embeddings("alice", "dlib")
    assert len(pks) == 1 and vectors.shape == (1, 128) and vectors.dtype == np.float32
    ids, photos = store.person_embeddings("alice", "dlib")
    assert ids == [donna.id] and photos.shape == (1, 128)
    store.replace_person_matches("alice", donna.id, [])
    assert store.scenes_with_people(flt, 10) == []
    store.replace_person_matches("alice", donna.id, [(pks[0], 0.2, False)])
    store.delete_person("alice", donna.id)
    assert store.face_embeddings("alice", "dlib")[0] == pks  # faces stay; only the links go
    with pytest.raises(NotFoundError):
        store.get_person("alice", "Donna")


def test_a_scene_scores_its_best_vector_whole_or_window(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    other = store.add_video("alice", "b.mp4", "k", 1, "h2")
    commit(store, other.id, ["elsewhere"], [unit(1, 1)])
    # Scene 1 as a whole is far from the query; one of its windows is the query itself.
    commit(
        store,
        v.id,
        ["a scene", "a long scene about several things"],
        [unit(1), unit(0, 1)],
        windows=[(1, unit(0, 1, 1)), (1, unit(0, 0, 0, 1)), (1, unit(0, 1, 0, 1))],
    )
    flt = SceneFilter("alice")
    best, *rest = store.dense_text(flt, "m1", unit(0, 0, 0, 1), 10)
    assert store.scenes_by_pk("alice", [best.scene_pk])[best.scene_pk].index == 1
    assert best.score == pytest.approx(1.0, abs=1e-5), "the window's cosine, not the scene's (0)"
    assert best.window == 1, "and which window it was"
    (whole,) = store.dense_text(flt, "m1", unit(1), 1)
    assert whole.window is None and whole.score == pytest.approx(1.0, abs=1e-5), "the whole scene scored"
    assert len({s.scene_pk for s in [best, *rest]}) == len(rest) + 1 == 3, "one hit per scene"
    assert store.dense_text(flt, "another model", unit(0, 0, 0, 1), 10) == []
    only_b = SceneFilter("alice", video_ids=(other.id,))
    assert [s.score for s in store.dense_text(only_b, "m1", unit(0, 0, 0, 1), 10)] == [
        pytest.approx(0.0, abs=1e-6)
    ]
    store.delete_video(v.owner_id, v.id)
    assert table_counts(store)["scene_windows"] == 0


def test_possible_matches_and_the_owners_verdicts(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna = store.add_person("alice", "Donna")
    commit(
        store,
        v.id,
        ["sure", "possible", "nobody"],
        [unit(1), unit(0, 1), unit(0, 0, 1)],
        faces=[face(0), face(1), face(2)],
        matches={0: FaceMatch(donna.id, 0.4), 1: FaceMatch(donna.id, 0.63, possible=True)},
    )
    flt = SceneFilter(owner_id="alice", person_ids=(donna.id,))
    ranked = store.scenes_with_people(flt, 10)
    assert [round(s.score, 2) for s in ranked] == [0.6, 0.37], "possible matches count, after the sure"
    sure_pk, possible_pk = (s.scene_pk for s in ranked)
    scenes = store.scenes_by_pk("alice", [sure_pk, possible_pk])
    assert (scenes[sure_pk].people, scenes[sure_pk].possible_people) == (["Donna"], [])
    assert (scenes[possible_pk].people, scenes[possible_pk].possible_people) == ([], ["Donna"])
    person = store.get_person("alice", donna.id)
    assert (person.scene_count, person.possible_count) == (1, 1)
    (review,) = store.person_matches("alice", donna.id, possible_only=True)
    assert review.possible and review.verdict is None and review.distance == pytest.approx(0.63)
    assert review.video_id == v.id and review.filename == "a.mp4" and review.scene_index == 1
    assert [m.distance for m in store.person_matches("alice", donna.id)] == pytest.approx([0.4, 0.63])

    store.set_match_verdict("alice", donna.id, review.face_pk, "confirmed")
    assert store.scenes_by_pk("alice", [possible_pk])[possible_pk].people == ["Donna"]
    assert store.scenes_with_people(flt, 10)[0].scene_pk == possible_pk, "confirmed ranks first"
    assert store.person_matches("alice", donna.id, possible_only=True) == []
    sure_face = next(m.face_pk for m in store.person_matches("alice", donna.id) if not m.possible)
    store.set_match_verdict("alice", donna.id, sure_face, "rejected")
    assert [s.scene_pk for s in store.scenes_with_people(flt, 10)] == [possible_pk]
    assert store.scenes_by_pk("alice", [sure_pk])[sure_pk].people == []
    assert len(store.full_text(flt, ["sure"], [], 10)) == 0, "a rejected face no longer lets the scene in"
    assert store.judged_faces("alice") == {review.face_pk, sure_face}

    # Re-matching replaces the matcher's findings only: verdicts stay, and are not duplicated.
    store.replace_person_matches("alice", donna.id, [(sure_face, 0.4, False), (review.face_pk, 0.63, True)])
    verdicts = {m.face_pk: m.verdict for m in store.person_matches("alice", donna.id)}
    assert verdicts == {review.face_pk: "confirmed", sure_face: "rejected"}
    store.set_match_verdict("alice", donna.id, sure_face, None)  # undo: the matcher's call again
    assert {s.scene_pk for s in store.scenes_with_people(flt, 10)} == {sure_pk, possible_pk}

    with pytest.raises(NotFoundError):
        store.set_match_verdict("bob", donna.id, sure_face, "confirmed")  # not bob's person
    with pytest.raises(NotFoundError):
        store.set_match_verdict("alice", donna.id, 10**9, "confirmed")
    with pytest.raises(ValueError):
        store.set_match_verdict("alice", donna.id, sure_face, "maybe")
    assert store.person_matches("bob", donna.id) == []


def test_deleting_a_person_removes_photos_and_links(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna, ed = store.add_person("alice", "Donna"), store.add_person("alice", "Ed")
    store.add_person_photo("alice", donna.id, "people/d.jpg", "dlib", np.ones(128, np.float32))
    store.add_person_photo("alice", ed.id, "people/e.jpg", "dlib", np.ones(128, np.float32))
    commit(
        store,
        v.id,
        ["both of them"],
        [unit(1)],
        faces=[face(0), face(0, 0.5)],
        matches={0: FaceMatch(donna.id, 0.1), 1: FaceMatch(ed.id, 0.2)},
    )
    (pk,) = [
        h.scene_pk for h in store.scenes_with_people(SceneFilter("alice", person_ids=(donna.id, ed.id)), 10)
    ]
    assert store.scenes_by_pk("alice", [pk])[pk].people == ["Donna", "Ed"]
    before = table_counts(store)
    store.delete_person("alice", donna.id)
    assert store.scenes_by_pk("alice", [pk])[pk].people == ["Ed"]
    assert store.scenes_with_people(SceneFilter("alice", person_ids=(donna.id,)), 10) == []
    assert store.person_embeddings("alice", "dlib")[0] == [ed.id]
    assert table_counts(store) == {**before, "people": 1, "person_photos": 1, "face_matches": 1}
    with pytest.raises(NotFoundError):
        store.delete_person("alice", donna.id)


def test_every_listed_person_must_appear(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna, ed = store.add_person("alice", "Donna"), store.add_person("alice", "Ed")
    commit(
        store,
        v.id,
        ["donna alone", "both"],
        [unit(1), unit(1)],
        faces=[face(0), face(1), face(1, 0.5)],
        matches={0: FaceMatch(donna.id, 0.3), 1: FaceMatch(donna.id, 0.2), 2: FaceMatch(ed.id, 0.1)},
    )
    both = SceneFilter("alice", person_ids=(donna.id, ed.id))
    assert [scene_of(store, h).index for h in store.scenes_with_people(both, 10)] == [1]
    only_donna = SceneFilter("alice", person_ids=(donna.id,))
    assert [scene_of(store, h).index for h in store.scenes_with_people(only_donna, 10)] == [
        1,
        0,
    ]  # best first
    assert store.get_person("alice", "donna").scene_count == 2


def test_people_names_are_unique_per_owner_and_listed_in_order(store):
    store.add_person("alice", "zoe")
    bob = store.add_person("alice", "  Bob ")
    assert bob.name == "Bob" and bob.owner_id == "alice" and bob.photo_count == 0
    store.add_person("bob", "Bob")  # another owner may reuse the name
    assert [p.name for p in store.list_people("alice")] == ["Bob", "zoe"]
    with pytest.raises(ConflictError):
        store.rename_person("alice", bob.id, "ZOE")
    assert store.rename_person("alice", bob.id, "Robert").name == "Robert"
    assert store.get_person("alice", "robert").id == bob.id
    with pytest.raises(NotFoundError):
        store.get_person("bob", bob.id)
    with pytest.raises(ValueError):
        store.add_person("alice", "   ")


# ---------------------------------------------------------------- threads


def test_concurrent_searches_and_commits(store):
    videos = [store.add_video("alice", f"{i}.mp4", "k", 1, f"h{i}") for i in range(4)]
    for v in videos:
        commit(store, v.id, ["harbour at dawn", "market"], [unit(1), unit(0, 1)])
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(10):
                flt = SceneFilter(owner_id="alice")
                assert len(store.full_text(flt, ["harbour"], [], 10)) == 4
                assert len(store.dense_text(flt, "m1", unit(1), 3)) == 3
                commit(store, videos[i].id, ["harbour at dawn", "market"], [unit(1), unit(0, 1)])
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.scene_count("alice") == 8


def _delete_while_workers_run(store: Store, name: str, delay_s: float) -> list[BaseException]:
    """Two workers renewing, giving back and taking again their stage claims, a third committing
    the video's scenes, while the video is deleted; returns what the workers raised."""
    v = store.add_video("alice", f"{name}.mp4", "k", 1, name)
    commit(store, v.id, ["words"], [unit(1)])
    for worker, stage in (("w1", "asr_fast"), ("w2", "scene_detect")):
        assert store.claim_stage(v.id, stage, worker, 30)
    start, errors = threading.Barrier(4), []

    def claims(worker: str, stage: str) -> None:
        start.wait()
        try:  # until the video is gone: the store then says no
            while store.renew_stage_claim(v.id, stage, worker, 30):
                store.release_stage_claim(v.id, stage, worker)
                if not store.claim_stage(v.id, stage, worker, 30):
                    break
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    def commits() -> None:
        start.wait()
        try:
            for _ in range(10):
                commit(store, v.id, ["words again"], [unit(1)])
        except NotFoundError:
            pass  # deleted first: the commit is refused, which is what a worker expects
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=claims, args=("w1", "asr_fast")),
        threading.Thread(target=claims, args=("w2", "scene_detect")),
        threading.Thread(target=commits),
    ]
    for t in threads:
        t.start()
    start.wait()
    time.sleep(delay_s)
    store.delete_video("alice", v.id)
    for t in threads:
        t.join()
    assert store.stage_records(v.id) == [] and store.list_videos("alice") == []
    assert not store.claim_stage(v.id, "asr_fast", "w1", 30), "a deleted video's stages are not claimed"
    return errors


def test_a_video_deleted_while_workers_claim_and_commit_it_goes_without_a_deadlock(store):
    """A delete cascades from the video to its stage rows; a worker's claim writes both. Taken in
    opposite orders, PostgreSQL found a deadlock and the API answered DELETE with a 500."""
    for round_ in range(20):
        # the delete lands at a different point of the workers' loops
        assert _delete_while_workers_run(store, f"v{round_}", 0.001 * (round_ % 5)) == []


def test_a_lease_is_held_by_one_holder_until_released_or_expired(store):
    """The lease LibraryReembed re-embeds under (reembed.py): one process at a time, the holder may
    take it again, and a holder that stopped renewing (killed) loses it once it expires."""
    assert store.lease_holder("reembed") is None
    assert store.claim_lease("reembed", "w1", 30)
    assert not store.claim_lease("reembed", "w2", 30), "a live lease is exclusive"
    assert store.claim_lease("reembed", "w1", 30), "the holder may take it again"
    assert store.claim_lease("other", "w2", 30), "another name is another lease"
    assert store.lease_holder("reembed") == "w1" and store.lease_holder("other") == "w2"
    assert store.renew_lease("reembed", "w1", 0.2) and not store.renew_lease("reembed", "w2", 30)
    store.release_lease("reembed", "w2")  # not the holder: nothing happens
    assert store.lease_holder("reembed") == "w1"
    time.sleep(0.4)  # w1 stopped renewing: its lease ran out
    assert store.lease_holder("reembed") is None
    assert store.claim_lease("reembed", "w2", 30), "an expired lease is taken over"
    assert not store.renew_lease("reembed", "w1", 30), "the old holder lost it"
    store.release_lease("reembed", "w2")
    assert store.lease_holder("reembed") is None and not store.renew_lease("reembed", "w2", 30)
    assert store.claim_lease("reembed", "w1", 30), "a released lease is free"


def test_stage_claims_are_exclusive_per_stage_and_end_when_the_stage_is_done(store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    assert store.claim_stage(v.id, "asr_fast", "w1", 30)
    assert store.claim_stage(v.id, "scene_detect", "w2", 30), "another stage of the same video"
    assert not store.claim_stage(v.id, "asr_fast", "w2", 30), "a live stage claim is exclusive"
    assert store.claim_stage(v.id, "asr_fast", "w1", 30), "the holder may claim again"
    records = {r.stage: r for r in store.stage_records(v.id)}
    assert (records["asr_fast"].claimed_by, records["asr_fast"].state) == ("w1", StageState.PENDING)
    assert store.get_video(v.owner_id, v.id).claimed_by in ("w1", "w2")
    assert store.renew_stage_claim(v.id, "asr_fast", "w1", 30)
    assert not store.renew_stage_claim(v.id, "asr_fast", "w2", 30)
    store.stage_started(v.id, "asr_fast")
    store.stage_done(v.id, "asr_fast", 1.0)
    store.release_stage_claim(v.id, "asr_fast", "w1")
    assert store.get_video(v.owner_id, v.id).claimed_by == "w2", "w2 still runs scene_detect"
    assert not store.claim_stage(v.id, "asr_fast", "w2", 30), "a done stage is never claimed again"
    assert [r.attempts for r in store.stage_records(v.id) if r.stage == "asr_fast"] == [1]
    store.release_stage_claim(v.id, "scene_detect", "w2")
    assert store.get_video(v.owner_id, v.id).claimed_by is None


def test_pieces_have_rows_of_their_own_that_stage_lists_leave_out(store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    store.stage_started(v.id, "asr_fast")
    store.add_pieces(v.id, "asr_fast", 2)  # the plan: pending rows
    assert [(r.pieces, r.pieces_done) for r in store.stage_records(v.id)] == [(2, 0)]
    for piece in (0, 1, 10):
        assert store.claim_stage(v.id, piece_key("asr_fast", piece), f"w{piece}", 30)
        store.stage_started(v.id, piece_key("asr_fast", piece))
    assert not store.claim_stage(v.id, piece_key("asr_fast", 1), "w0", 30), "a piece's claim is its own"
    store.stage_done(v.id, piece_key("asr_fast", 1), 2.0)
    store.add_pieces(v.id, "asr_fast", 2)  # again (a plan's message delivered twice): nothing changes
    assert [(r.stage, r.pieces, r.pieces_done) for r in store.stage_records(v.id)] == [("asr_fast", 3, 1)]
    pieces = {r.stage: r for r in store.piece_records(v.id, "asr_fast")}
    assert set(pieces) == {"asr_fast#0", "asr_fast#1", "asr_fast#10"}
    assert pieces["asr_fast#1"].state == StageState.DONE and pieces["asr_fast#1"].attempts == 1
    assert pieces["asr_fast#0"].claimed_by == "w0"
    assert store.piece_records(v.id, "scene_detect") == []
    for piece in (0, 1, 10):
        store.release_stage_claim(v.id, piece_key("asr_fast", piece), f"w{piece}")
    assert store.get_video(v.owner_id, v.id).claimed_by is None
    store.requeue_video("alice", v.id)
    assert store.piece_records(v.id, "asr_fast") == [], "reprocess forgets the pieces too"


def test_an_expired_stage_claim_can_be_taken_over(store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    assert store.claim_stage(v.id, "commit", "w1", 0.2)
    assert not store.claim_stage(v.id, "commit", "w2", 30)
    time.sleep(0.4)
    assert store.claim_stage(v.id, "commit", "w2", 30)
    assert not store.renew_stage_claim(v.id, "commit", "w1", 30), "the old holder lost it"


def test_a_stage_outcome_is_recorded_only_by_the_holder_of_its_claim(store):
    v = store.add_video("alice", "a.mp4", "k", 1, None)
    assert store.claim_stage(v.id, "asr_fast", "w1", 0.2)
    store.stage_started(v.id, "asr_fast")
    time.sleep(0.4)
    assert store.claim_stage(v.id, "asr_fast", "w2", 30), "w1's lease ran out: w2 takes the stage over"
    store.stage_started(v.id, "asr_fast")
    assert not store.stage_done(v.id, "asr_fast", 1.0, claimed_by="w1"), "w1 checked its claim too early"
    assert not store.stage_failed(v.id, "asr_fast", 1.0, "late", claimed_by="w1")
    (record,) = store.stage_records(v.id)
    assert (record.state, record.error, record.claimed_by) == (StageState.RUNNING, None, "w2")
    assert store.stage_done(v.id, "asr_fast", 2.0, claimed_by="w2")
    (record,) = store.stage_records(v.id)
    assert (record.state, record.duration_s, record.attempts) == (StageState.DONE, 2.0, 2)
    assert store.stage_done(v.id, "asr_fast", 2.0), "without a claim (the in-process runner): unfenced"


def test_stage_claims_from_many_threads_have_one_winner(store):
    from concurrent.futures import ThreadPoolExecutor

    v = store.add_video("alice", "a.mp4", "k", 1, None)
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(lambda i: store.claim_stage(v.id, "embed_text", f"w{i}", 30), range(8)))
    assert won.count(True) == 1


# ---------------------------------------------------------------- unnamed people (face clusters)


def seen(scene_index: int, value: float, size_px: float, crop: str | None = None) -> FaceObservation:
    return face(scene_index, value).model_copy(
        update={"size_px": size_px, "sharpness": 100.0 + size_px, "crop_key": crop}
    )


def test_face_clusters_group_name_merge_move_hide(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    faces = [seen(0, 1.0, 80, "c/0.jpg"), seen(1, 1.0, 120, "c/1.jpg"), seen(1, -1.0, 60), seen(2, 0.5, 30)]
    commit(store, v.id, ["a", "b", "c"], [unit(1), unit(0, 1), unit(1, 1)], faces=faces)
    found = store.clustering_faces("alice", "dlib")
    assert found.clusters == [None] * 4 and found.size_px == [80, 120, 60, 30]
    assert found.sharpness == [180, 220, 160, 130] and found.vectors.shape == (4, 128)
    assert store.clustering_faces("bob", "dlib").pks == []
    p = found.pks

    big, small = store.add_to_clusters("alice", {}, [[p[0], p[1]], [p[2]]])
    (bob_cluster,) = store.add_to_clusters("bob", {}, [[p[3]]])  # another owner's face: left alone
    assert store.add_to_clusters("alice", {p[3]: bob_cluster}, []) == []  # nor into bob's cluster
    assert store.clustering_faces("alice", "dlib").clusters == [big, big, small, None]
    store.add_to_clusters("alice", {p[3]: big, p[0]: small}, [])  # p[0] is clustered already: stays
    listed = store.list_clusters("alice")
    assert [c.id for c in listed] == [big, small], "largest first"
    assert listed[0].face_count == 3 and listed[0].scene_count == 3
    assert [f.face_pk for f in listed[0].best_faces] == [p[1], p[0], p[3]], "largest face first"
    assert listed[0].best_faces[0].crop_key == "c/1.jpg" and listed[0].best_faces[0].filename == "a.mp4"
    assert store.list_clusters("bob") == [] and store.face_cluster("alice", p[3]) == big
    with pytest.raises(NotFoundError):
        store.get_cluster("bob", big)
    with pytest.raises(NotFoundError):
        store.face_cluster("bob", p[0])

    # Named: the cluster's person, its faces confirmed and examples for matching.
    donna = store.add_person("alice", "Donna")
    store.set_cluster_person("alice", big, donna.id)
    store.confirm_faces("alice", donna.id, [p[0], p[1], p[3]])
    assert store.get_cluster("alice", big).person_name == "Donna"
    assert store.get_person("alice", "Donna").scene_count == 3
    ids, examples = store.person_embeddings("alice", "dlib")
    assert ids == [donna.id] * 3 and examples.shape == (3, 128)
    with pytest.raises(NotFoundError):
        store.confirm_faces("bob", donna.id, [p[2]])
    with pytest.raises(NotFoundError):
        store.set_cluster_person("bob", big, None)

    # Merge, move a face out (an emptied cluster goes), hide.
    store.merge_clusters("alice", small, big)
    with pytest.raises(NotFoundError):
        store.get_cluster("alice", small)
    own = store.move_face("alice", p[2], None)
    assert [f.face_pk for f in store.cluster_faces("alice", own)] == [p[2]]
    back = store.move_face("alice", p[2], big)
    assert back == big and store.list_clusters("alice", hidden=True)[0].face_count == 4
    with pytest.raises(NotFoundError):
        store.get_cluster("alice", own)
    with pytest.raises(NotFoundError):
        store.move_face("bob", p[2], None)
    store.set_cluster_hidden("alice", big, True)
    assert store.list_clusters("alice") == [] and store.list_clusters("alice", hidden=True)[0].hidden
    with pytest.raises(NotFoundError):
        store.merge_clusters("bob", big, bob_cluster)

    # Votes: unnamed clusters and the people their faces surely match.
    store.set_cluster_person("alice", big, None)
    assert store.cluster_votes("alice") == [(big, donna.id, 3)]
    assert store.cluster_votes("bob") == []

    # Reprocessing replaces the faces: they are unclustered again, and an emptied cluster is not listed.
    commit(store, v.id, ["a"], [unit(1)], faces=[seen(0, 1.0, 80)])
    assert store.clustering_faces("alice", "dlib").clusters == [None]
    assert store.list_clusters("alice", hidden=True) == []


def test_faces_in_no_cluster_and_one_face_of_the_owners(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    faces = [seen(0, 1.0, 80, "c/0.jpg"), seen(1, 0.5, 41, "c/1.jpg"), seen(2, -1.0, 50)]
    appearance = face(2, 0.3).model_copy(update={"model": "pets"})  # another model's: never clustered
    commit(store, v.id, ["a", "b", "c"], [unit(1), unit(0, 1), unit(1, 1)], faces=[*faces, appearance])
    p = store.clustering_faces("alice", "dlib").pks
    (group,) = store.add_to_clusters("alice", {}, [[p[0]]])

    waiting = store.unclustered_faces("alice", "dlib")
    assert [f.face_pk for f in waiting] == [p[2], p[1]], "largest first; the other model's left out"
    assert waiting[1].crop_key == "c/1.jpg" and waiting[1].scene_index == 1 and waiting[1].cluster_id is None
    assert store.unclustered_faces("bob", "dlib") == []
    one = store.get_face("alice", p[0])
    assert (one.cluster_id, one.crop_key, one.filename, one.scene_index) == (group, "c/0.jpg", "a.mp4", 0)
    assert store.get_cluster("alice", group).best_faces[0].cluster_id == group
    with pytest.raises(NotFoundError):
        store.get_face("bob", p[0])
    with pytest.raises(NotFoundError):
        store.get_face("alice", 10**9)

    store.move_face("alice", p[1], group)
    assert [f.face_pk for f in store.unclustered_faces("alice", "dlib")] == [p[2]]


def test_merging_two_people_moves_photos_matches_and_clusters(store):
    v = store.add_video("alice", "a.mp4", "k", 1, "h")
    donna, smith = store.add_person("alice", "Donna"), store.add_person("alice", "Donna Smith")
    store.add_person_photo("alice", donna.id, f"people/{donna.id}/0000.jpg", "dlib", np.ones(128, np.float32))
    store.add_person_photo("alice", smith.id, f"people/{smith.id}/0000.jpg", "dlib", np.ones(128, np.float32))
    faces = [face(0), face(1), face(2), face(2, 0.5), face(3, 0.2)]
    matches = {0: FaceMatch(donna.id, 0.2), 1: FaceMatch(donna.id, 0.3), 3: FaceMatch(smith.id, 0.1)}
    commit(store, v.id, ["a", "b", "c", "d"], [unit(1)] * 4, faces=faces, matches=matches)
    p = store.clustering_faces("alice", "dlib").pks
    theirs, mine = store.add_to_clusters("alice", {}, [[p[0], p[1]], [p[2], p[3]]])
    store.set_cluster_person("alice", theirs, donna.id)
    store.set_cluster_person("alice", mine, smith.id)
    store.confirm_faces("alice", smith.id, [p[2]])
    store.confirm_faces("alice", donna.id, [p[1]])
    store.replace_person_matches("alice", smith.id, [(p[1], 0.3, False)])
    store.set_match_verdict("alice", smith.id, p[1], "rejected")  # said not to be Smith, and to be Donna
    store.replace_person_matches("alice", donna.id, [(p[0], 0.2, False), (p[4], 0.55, True)])
    store.replace_person_matches("alice", smith.id, [(p[3], 0.1, False), (p[4], 0.5, True)])
    bob = store.add_person("bob", "Donna")
    with pytest.raises(NotFoundError):
        store.merge_people("bob", donna.id, bob.id, {})
    with pytest.raises(NotFoundError):
        store.merge_people("alice", bob.id, smith.id, {})
    with pytest.raises(ValueError):
        store.merge_people("alice", smith.id, smith.id, {})

    key = f"people/{donna.id}/0000.jpg"
    moved = f"people/{smith.id}/0001.jpg"
    assert store.person_photo_keys("alice", donna.id) == [key]
    store.merge_people("alice", donna.id, smith.id, {key: moved})
    with pytest.raises(NotFoundError):
        store.get_person("alice", donna.id)
    assert store.person_photo_keys("alice", smith.id) == [f"people/{smith.id}/0000.jpg", moved]
    kept = store.get_person("alice", "Donna Smith")
    assert kept.photo_count == 2 and kept.scene_count == 3
    verdicts = {m.face_pk: (m.verdict, m.possible) for m in store.person_matches("alice", smith.id)}
    assert verdicts == {
        p[0]: (None, False),  # Donna's undecided match, now Smith's
        p[1]: ("confirmed", False),  # confirmed for Donna beats rejected for Smith
        p[2]: ("confirmed", False),
        p[3]: (None, False),
        p[4]: (None, True),  # both matched it undecided: one link stays
    }
    assert {c.person_id for c in store.list_clusters("alice")} == {smith.id}
    ids, _ = store.person_embeddings("alice", "dlib")
    assert set(ids) == {smith.id} and len(ids) == 4, "two photos and two confirmed faces"
    assert store.get_person("bob", "Donna").id == bob.id
