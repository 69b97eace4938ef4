"""The stage table (pipeline/graph.py): what is derived from it, and what its validator refuses."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from dataclasses import replace

import pytest

from heimdex.pipeline import artifacts as a
from heimdex.pipeline.artifacts import Artifact
from heimdex.pipeline.graph import (
    GRAPH,
    QUEUES,
    STAGE_DEPENDENCIES,
    STAGE_WEIGHTS,
    STAGES,
    TABLE,
    Stage,
    StageFunction,
    StageGraphError,
    validate,
)

# The hand-kept tables the declaration replaced (pipeline/stages/__init__.py, pipeline/events.py).
LEGACY_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "upload_validate": (),
    "audio_extract": ("upload_validate",),
    "asr_fast": ("audio_extract",),
    "scene_detect": ("upload_validate",),
    "vision_sample_frames": ("scene_detect",),
    "vision_embed_frames": ("vision_sample_frames",),
    "vision_affect_tags": ("vision_sample_frames",),
    "faces_enroll_match": ("vision_affect_tags",),
    "align_merge": ("asr_fast", "vision_embed_frames", "vision_affect_tags", "faces_enroll_match"),
    "embed_text": ("align_merge",),
    "sidecar_build": ("embed_text",),
    "commit": ("sidecar_build",),
}
LEGACY_WEIGHTS = {
    "upload_validate": 1,
    "audio_extract": 3,
    "asr_fast": 30,
    "scene_detect": 15,
    "align_merge": 2,
    "embed_text": 4,
    "vision_sample_frames": 10,
    "vision_embed_frames": 15,
    "vision_affect_tags": 6,
    "faces_enroll_match": 6,
    "sidecar_build": 1,
    "commit": 2,
}


def closure(deps: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Stage -> every stage it waits for, directly or not."""
    out: dict[str, set[str]] = {}

    def of(name: str) -> set[str]:
        if name not in out:
            out[name] = set(deps[name]).union(*(of(d) for d in deps[name]))
        return out[name]

    for name in deps:
        of(name)
    return out


def reduction(deps: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """The fewest edges with the same closure: what a stage waits for that nothing else implies."""
    every = closure(deps)
    return {s: {d for d in deps[s] if not any(d in every[o] for o in deps[s] if o != d)} for s in deps}


def ready(deps: dict[str, tuple[str, ...]], done: set[str]) -> list[str]:
    """What the runner starts next (PipelineRunner._ready with `deps`), nothing running."""
    return [s for s in STAGES if s not in done and all(d in done for d in deps[s])]


def downward_closed(deps: dict[str, tuple[str, ...]]):
    """Every set of done stages a ledger can hold: a stage is done only after what it waits for."""
    every = closure(deps)
    for n in range(len(STAGES) + 1):
        for done in itertools.combinations(STAGES, n):
            chosen = set(done)
            if all(every[s] <= chosen for s in chosen):
                yield chosen


# ---------------------------------------------------------------- the table as declared


def test_the_twelve_names_and_a_topological_order():
    assert len(STAGES) == 12 and set(STAGES) == set(LEGACY_DEPENDENCIES)
    assert STAGES == (
        "upload_validate",
        "audio_extract",
        "asr_fast",
        "scene_detect",
        "vision_sample_frames",
        "vision_embed_frames",
        "vision_affect_tags",
        "faces_enroll_match",
        "align_merge",
        "embed_text",
        "sidecar_build",
        "commit",
    )
    position = {s: i for i, s in enumerate(STAGES)}
    assert all(position[d] < position[s] for s in STAGES for d in STAGE_DEPENDENCIES[s])


def test_derived_dependencies_order_stages_exactly_as_the_old_table():
    # Each stage now waits for every stage whose artifacts it reads: the old edges, plus ones the old
    # table implied through another stage (align_merge reads media_info.json from upload_validate).
    for stage, old in LEGACY_DEPENDENCIES.items():
        assert set(old) <= set(STAGE_DEPENDENCIES[stage]), stage
    assert closure(STAGE_DEPENDENCIES) == closure(LEGACY_DEPENDENCIES)
    assert reduction(STAGE_DEPENDENCIES) == reduction(LEGACY_DEPENDENCIES)
    # So the runner starts the same stages at every point a run can be at (or resume from).
    states = list(downward_closed(LEGACY_DEPENDENCIES))
    assert len(states) > 12
    for done in states:
        assert ready(STAGE_DEPENDENCIES, done) == ready(LEGACY_DEPENDENCIES, done), done


def test_the_runner_waits_on_the_derived_dependencies():
    from heimdex.pipeline.runner import PipelineRunner

    assert PipelineRunner._ready(set(), set()) == ["upload_validate"]
    assert PipelineRunner._ready({"upload_validate"}, set()) == ["audio_extract", "scene_detect"]
    before_faces = {"upload_validate", "scene_detect", "vision_sample_frames", "audio_extract", "asr_fast"}
    assert PipelineRunner._ready(before_faces, {"asr_fast"}) == ["vision_embed_frames", "vision_affect_tags"]
    everything_but_faces = set(STAGES) - {"faces_enroll_match", "align_merge", "embed_text"}
    everything_but_faces -= {"sidecar_build", "commit"}
    assert PipelineRunner._ready(everything_but_faces, set()) == ["faces_enroll_match"]
    for done in downward_closed(LEGACY_DEPENDENCIES):
        assert PipelineRunner._ready(done, set()) == ready(LEGACY_DEPENDENCIES, done)


def test_what_the_old_table_said_by_hand_now_follows_from_artifacts():
    faces = GRAPH["faces_enroll_match"]
    assert a.TAGS in faces.inputs and GRAPH.producer(a.TAGS) == "vision_affect_tags"
    assert {"asr_fast", "vision_embed_frames", "vision_affect_tags", "faces_enroll_match"} <= set(
        STAGE_DEPENDENCIES["align_merge"]
    )
    assert GRAPH.producer(a.MEDIA_INFO) == "upload_validate" and GRAPH.producer(a.ORIGINAL) is None
    assert [s for s in STAGES if a.MEDIA_INFO in GRAPH[s].inputs] == [
        "audio_extract",
        "scene_detect",
        "vision_sample_frames",
        "faces_enroll_match",  # looks again at full size only where the original is larger
        "align_merge",
    ]


def test_queues_and_weights():
    assert QUEUES == ("media", "asr", "vision", "index")
    queues = {q: [s.name for s in TABLE if s.queue == q] for q in QUEUES}
    assert queues == {
        "media": ["upload_validate", "audio_extract", "scene_detect", "vision_sample_frames"],
        "asr": ["asr_fast"],
        "vision": ["vision_embed_frames", "vision_affect_tags", "faces_enroll_match"],
        "index": ["align_merge", "embed_text", "sidecar_build", "commit"],
    }
    assert STAGE_WEIGHTS == LEGACY_WEIGHTS


def test_every_artifact_is_declared_once_and_written_by_one_stage():
    declared = [v for v in vars(a).values() if isinstance(v, Artifact)]
    names = [x.name for x in declared]
    assert len(names) == len(set(names))
    written = [x for s in TABLE for x in s.outputs]
    assert len(written) == len(set(written))
    used = {x for s in TABLE for x in (*s.inputs, *s.outputs)}
    planned = {s.fanout.plan_artifact for s in TABLE if s.fanout is not None}  # server mode's pieces
    assert used | planned == set(declared), "an artifact constant no stage reads or writes"
    assert not used & planned, "a fan-out's plan is its own, not a stage's input or output"


def test_each_function_is_the_stage_of_that_name():
    for stage in TABLE:
        function = stage.run.resolve()
        assert callable(function) and function.__name__ == stage.name
        assert function.__module__ == f"heimdex.pipeline.stages.{stage.run.module}"


def test_a_fan_out_names_functions_of_its_stage_module():
    fanned = [s for s in TABLE if s.fanout is not None]
    assert [s.name for s in fanned] == ["asr_fast"]
    for stage in fanned:
        for function in (stage.fanout.plan, stage.fanout.piece, stage.fanout.join):
            assert callable(function.resolve()) and function.module == stage.run.module


def test_reading_the_table_loads_no_stage_code():
    code = (
        "import json, sys, heimdex.pipeline.graph, heimdex.cli, heimdex.queue;"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('numpy', 'cv2', 'av', 'heimdex')))))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    heavy = [
        m
        for m in loaded
        if m.split(".")[0] in {"numpy", "cv2", "av"}
        or m.startswith(("heimdex.ml", "heimdex.pipeline.stages"))
    ]
    assert heavy == []
    assert "heimdex.pipeline.context" not in loaded and "heimdex.pipeline.runner" not in loaded


# ---------------------------------------------------------------- the validator


def _stage(name: str, inputs=(), outputs=(), queue="index", weight=1) -> Stage:
    return Stage(name, StageFunction("nowhere", name), tuple(inputs), tuple(outputs), queue, weight)


X = Artifact("x.json", dict)
Y = Artifact("y.json", dict)
Z = Artifact("z.json", dict)


def test_a_small_valid_table_derives_its_dependencies():
    graph = validate(
        [
            _stage("first", inputs=[a.ORIGINAL], outputs=[X]),
            _stage("second", inputs=[X], outputs=[Y]),
            _stage("third", inputs=[Y, X], outputs=[Z]),
        ]
    )
    assert graph.dependencies == {"first": (), "second": ("first",), "third": ("first", "second")}
    assert graph.names == ("first", "second", "third")


def test_the_real_table_is_valid_and_rebuilds_the_same():
    assert validate(TABLE).dependencies == STAGE_DEPENDENCIES


def test_rejects_a_name_declared_twice():
    with pytest.raises(StageGraphError, match="'one' is declared twice"):
        validate([_stage("one", outputs=[X]), _stage("one", outputs=[Y])])
    with pytest.raises(StageGraphError, match="'commit' is declared twice"):
        validate([*TABLE, replace(TABLE[-1])])


def test_rejects_an_input_no_stage_writes():
    with pytest.raises(StageGraphError, match=re.escape("'second' reads y.json, which no stage writes")):
        validate([_stage("first", outputs=[X]), _stage("second", inputs=[X, Y])])
    no_tagger = [s for s in TABLE if s.name != "vision_affect_tags"]
    with pytest.raises(
        StageGraphError, match=re.escape("'faces_enroll_match' reads tags.json, which no stage writes")
    ):
        validate(no_tagger)


def test_rejects_an_artifact_written_twice():
    with pytest.raises(StageGraphError, match=re.escape("x.json is written by both 'first' and 'second'")):
        validate([_stage("first", outputs=[X]), _stage("second", outputs=[X])])
    with pytest.raises(StageGraphError, match="written by both 'align_merge' and 'sidecar_build'"):
        validate([replace(s, outputs=(a.DRAFTS,)) if s.name == "sidecar_build" else s for s in TABLE])


def test_rejects_writing_the_original():
    with pytest.raises(StageGraphError, match="writes original, which is given"):
        validate([_stage("first", outputs=[a.ORIGINAL])])


def test_rejects_a_cycle():
    with pytest.raises(StageGraphError, match="cycle: a -> b -> a"):
        validate([_stage("a", inputs=[Y], outputs=[X]), _stage("b", inputs=[X], outputs=[Y])])
    with pytest.raises(StageGraphError, match="cycle: self -> self"):
        validate([_stage("self", inputs=[X], outputs=[X])])
    # scene_detect waiting for the frames that depend on it
    looped = [replace(s, inputs=(*s.inputs, a.FRAMES)) if s.name == "scene_detect" else s for s in TABLE]
    with pytest.raises(StageGraphError, match="cycle: scene_detect -> vision_sample_frames -> scene_detect"):
        validate(looped)


def test_rejects_an_order_that_is_not_topological():
    with pytest.raises(StageGraphError, match="'second' is listed before 'first'"):
        validate([_stage("second", inputs=[X]), _stage("first", outputs=[X])])
    # the order the stages used to be listed in: align_merge before the vision stages it waits for
    old_order = [GRAPH[s] for s in LEGACY_WEIGHTS]
    with pytest.raises(StageGraphError, match="'align_merge' is listed before 'vision_sample_frames'"):
        validate(old_order)


def test_rejects_an_unknown_queue_a_bad_weight_and_two_artifacts_of_one_name():
    with pytest.raises(StageGraphError, match="unknown queue 'gpu'"):
        validate([_stage("first", queue="gpu")])
    with pytest.raises(StageGraphError, match="weight must be a positive integer"):
        validate([_stage("first", weight=0)])
    with pytest.raises(StageGraphError, match=re.escape("two artifacts are named 'x.json'")):
        validate([_stage("first", outputs=[X]), _stage("second", inputs=[Artifact("x.json", list[int])])])
