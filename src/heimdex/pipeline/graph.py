"""The twelve stages, declared once: name, function, what each reads and writes, which queue runs it
and its share of progress. Everything else is derived from this table: the order (`STAGES`), what
each stage waits for (a stage depends on the stages that write its inputs), the progress weights.

The table is checked when this module is imported (`validate`): a stage reading an artifact no
earlier stage writes, an artifact written twice, a cycle or a stage listed before one it depends on
stops the import with a `StageGraphError` that says which.

Light on purpose: the CLI and the API import it for the names and weights. A stage's function is
named by module and imported on first use (the runner binds them all when it is made), so reading
the table loads no decoder, numpy-heavy stage code or model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from heimdex.pipeline.artifacts import (
    AUDIO,
    CANDIDATES,
    CLIP_MODEL,
    CLIP_TIMES,
    CLIP_VECTORS,
    CUTS,
    DRAFTS,
    FACES,
    FACES_MODEL,
    FACES_PLACED,
    FRAME_MODEL,
    FRAME_TIMES,
    FRAME_VECTORS,
    FRAMES,
    LABEL_VECTORS,
    MEDIA_INFO,
    OCR,
    OCR_MODEL,
    ORIGINAL,
    RUN,
    SIDECAR_DRAFTS,
    SPEECH_PIECES,
    SPEECH_PLAN,
    TAGGER_MODEL,
    TAGS,
    TEXT_MODEL,
    TEXT_VECTORS,
    TRANSCRIPT,
    WINDOW_VECTORS,
    Artifact,
    Pieces,
)

if TYPE_CHECKING:
    from heimdex.pipeline.context import StageContext

# What a stage needs to run, as the queue that runs it: decoding (media), speech recognition (asr),
# the vision models (vision), text embedding and the store (index).
QUEUES: tuple[str, ...] = ("media", "asr", "vision", "index")


class StageGraphError(ValueError):
    """The stage table is inconsistent."""


class StageFunction(NamedTuple):  # a NamedTuple, not a dataclass: this module is imported at CLI start
    """`heimdex.pipeline.stages.<module>.<name>`, imported when first called or resolved."""

    module: str
    name: str

    @property
    def path(self) -> str:
        return f"heimdex.pipeline.stages.{self.module}.{self.name}"

    def resolve(self) -> Callable[[StageContext], None]:
        return getattr(importlib.import_module(f"heimdex.pipeline.stages.{self.module}"), self.name)

    def __call__(self, ctx: StageContext, *args: Any) -> Any:
        return self.resolve()(ctx, *args)


class FanOut(NamedTuple):
    """How server mode runs a stage as pieces, one message each, on any workers (queue/broker.py):
    `plan(ctx) -> int` cuts the work and saves `plan_artifact` (1: the stage runs whole, as its `run`);
    `piece(ctx, k)` writes `pieces.at(k)`; `join(ctx)`, once every piece is done, writes the stage's
    outputs. The embedded runner never fans out: it runs the stage whole."""

    plan: StageFunction
    piece: StageFunction
    join: StageFunction
    plan_artifact: Artifact
    pieces: Pieces


@dataclass(frozen=True)
class Stage:
    """A stage: `run(ctx)` reads `inputs` and writes `outputs` (safe to run again: idempotent)."""

    name: str
    run: StageFunction
    inputs: tuple[Artifact, ...]
    outputs: tuple[Artifact, ...]
    queue: str  # one of QUEUES
    weight: int  # rough share of indexing time, so that one progress figure moves evenly
    fanout: FanOut | None = None  # server mode may run it in pieces


def _in(module: str, name: str) -> StageFunction:
    return StageFunction(module, name)


# The audio branch (audio_extract, asr_fast) and the vision branch (scene_detect ... faces_enroll_match)
# run side by side; they meet at align_merge.
TABLE: tuple[Stage, ...] = (
    Stage(
        "upload_validate",
        _in("validate", "upload_validate"),
        inputs=(ORIGINAL,),
        outputs=(MEDIA_INFO, RUN),
        queue="media",
        weight=1,
    ),
    Stage(
        "audio_extract",
        _in("audio", "audio_extract"),
        inputs=(MEDIA_INFO, ORIGINAL),
        outputs=(AUDIO,),
        queue="media",
        weight=3,
    ),
    Stage(
        "asr_fast",
        _in("audio", "asr_fast"),
        inputs=(AUDIO,),
        outputs=(TRANSCRIPT,),
        queue="asr",
        weight=30,
        fanout=FanOut(
            _in("audio", "speech_plan"),
            _in("audio", "speech_piece"),
            _in("audio", "speech_join"),
            plan_artifact=SPEECH_PLAN,
            pieces=SPEECH_PIECES,
        ),
    ),
    Stage(
        "scene_detect",
        _in("scenes", "scene_detect"),
        inputs=(MEDIA_INFO, ORIGINAL),
        outputs=(CANDIDATES, CUTS),
        queue="media",
        weight=15,
    ),
    Stage(
        "vision_sample_frames",
        _in("frames", "vision_sample_frames"),
        inputs=(MEDIA_INFO, CUTS, CANDIDATES, ORIGINAL),
        outputs=(FRAMES,),
        queue="media",
        weight=10,
    ),
    Stage(
        "vision_embed_frames",
        _in("frames", "vision_embed_frames"),
        inputs=(FRAMES,),
        outputs=(OCR, OCR_MODEL, CLIP_VECTORS, CLIP_TIMES, CLIP_MODEL),
        queue="vision",
        weight=15,
    ),
    Stage(
        "vision_affect_tags",
        _in("frames", "vision_affect_tags"),
        inputs=(FRAMES,),
        outputs=(TAGS, TAGGER_MODEL, FRAME_VECTORS, FRAME_TIMES, FRAME_MODEL),
        queue="vision",
        weight=6,
    ),
    Stage(
        "faces_enroll_match",
        _in("frames", "faces_enroll_match"),
        # TAGS: pets are embedded in the tagger's animal boxes, small faces looked for in its people's;
        # ORIGINAL and MEDIA_INFO: frames with such people are decoded again at full size; RUN: crops' keys
        inputs=(ORIGINAL, MEDIA_INFO, RUN, FRAMES, TAGS),
        outputs=(FACES, FACES_MODEL),
        queue="vision",
        weight=6,
    ),
    Stage(
        "align_merge",
        _in("scenes", "align_merge"),
        inputs=(MEDIA_INFO, RUN, TRANSCRIPT, CUTS, FRAMES, OCR, TAGS, FACES, ORIGINAL),
        outputs=(DRAFTS, FACES_PLACED),
        queue="index",
        weight=2,
    ),
    Stage(
        "embed_text",
        _in("text", "embed_text"),
        inputs=(DRAFTS,),
        outputs=(TEXT_VECTORS, WINDOW_VECTORS, LABEL_VECTORS, TEXT_MODEL),
        queue="index",
        weight=4,
    ),
    Stage(
        "sidecar_build",
        _in("finish", "sidecar_build"),
        inputs=(RUN, DRAFTS, FACES_PLACED, TRANSCRIPT, TEXT_MODEL, TAGGER_MODEL, OCR_MODEL, FACES_MODEL),
        outputs=(SIDECAR_DRAFTS,),
        queue="index",
        weight=1,
    ),
    Stage(
        "commit",
        _in("finish", "commit"),
        inputs=(
            RUN,
            SIDECAR_DRAFTS,
            FACES_PLACED,
            FACES_MODEL,  # whose faces are clustered into unnamed people
            TRANSCRIPT,
            TEXT_MODEL,
            TEXT_VECTORS,
            WINDOW_VECTORS,
            LABEL_VECTORS,
            FRAME_VECTORS,
            FRAME_TIMES,
            FRAME_MODEL,
            CLIP_VECTORS,
            CLIP_MODEL,
            CLIP_TIMES,
            CLIP_MODEL,
        ),
        outputs=(),  # the scenes, in the store
        queue="index",
        weight=2,
    ),
)


class StageGraph:
    """A checked stage table (made by `validate`)."""

    def __init__(self, stages: tuple[Stage, ...], dependencies: dict[str, tuple[str, ...]]) -> None:
        self.stages = stages
        # Stage -> the stages that write its inputs, in table order. The runner starts a stage once
        # every one of them is done.
        self.dependencies = dependencies

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def __getitem__(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def ready(self, done: set[str] | frozenset[str]) -> list[str]:
        """The stages not done whose dependencies all are, in table order."""
        return [
            s.name
            for s in self.stages
            if s.name not in done and all(d in done for d in self.dependencies[s.name])
        ]

    def dependents(self, name: str) -> list[str]:
        """The stages that wait for `name`."""
        return [s.name for s in self.stages if name in self.dependencies[s.name]]

    def producer(self, artifact: Artifact) -> str | None:
        """The stage that writes `artifact` (None for the original)."""
        return next((s.name for s in self.stages if artifact in s.outputs), None)


def validate(stages: Iterable[Stage]) -> StageGraph:
    """Check a stage table and derive its dependencies; StageGraphError says what is wrong."""
    stages = tuple(stages)
    seen: set[str] = set()
    for stage in stages:
        if stage.name in seen:
            raise StageGraphError(f"stage {stage.name!r} is declared twice")
        seen.add(stage.name)
        if stage.queue not in QUEUES:
            raise StageGraphError(f"stage {stage.name!r}: unknown queue {stage.queue!r} (one of {QUEUES})")
        if not isinstance(stage.weight, int) or stage.weight <= 0:
            raise StageGraphError(f"stage {stage.name!r}: weight must be a positive integer")

    kinds: dict[str, Artifact] = {}  # one artifact per name, whatever its kind
    producers: dict[str, str] = {}
    for stage in stages:
        for artifact in (*stage.inputs, *stage.outputs):
            other = kinds.setdefault(artifact.name, artifact)
            if other != artifact:
                raise StageGraphError(f"two artifacts are named {artifact.name!r}: {other} and {artifact}")
        for artifact in stage.outputs:
            if artifact.source:
                raise StageGraphError(f"stage {stage.name!r} writes {artifact}, which is given, not written")
            if artifact.name in producers:
                raise StageGraphError(
                    f"{artifact} is written by both {producers[artifact.name]!r} and {stage.name!r}"
                )
            producers[artifact.name] = stage.name

    dependencies: dict[str, tuple[str, ...]] = {}
    order = {s.name: i for i, s in enumerate(stages)}
    for stage in stages:
        found: set[str] = set()
        for artifact in stage.inputs:
            if artifact.source:
                continue
            if artifact.name not in producers:
                raise StageGraphError(f"stage {stage.name!r} reads {artifact}, which no stage writes")
            found.add(producers[artifact.name])
        dependencies[stage.name] = tuple(sorted(found, key=order.__getitem__))

    cycle = _find_cycle(dependencies)
    if cycle:
        raise StageGraphError("the stages form a cycle: " + " -> ".join(cycle))
    for stage in stages:
        for dependency in dependencies[stage.name]:
            if order[dependency] > order[stage.name]:
                raise StageGraphError(
                    f"stage {stage.name!r} is listed before {dependency!r}, which writes what it reads"
                )
    return StageGraph(stages, dependencies)


def _find_cycle(dependencies: dict[str, tuple[str, ...]]) -> list[str]:
    """A dependency cycle as [a, b, ..., a], or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = 1
        path.append(name)
        for dependency in dependencies[name]:
            if state.get(dependency) == 1:
                return [*path[path.index(dependency) :], dependency]
            if dependency not in state and (cycle := visit(dependency)):
                return cycle
        path.pop()
        state[name] = 2
        return []

    for name in dependencies:
        if name not in state and (cycle := visit(name)):
            return cycle
    return []


GRAPH = validate(TABLE)

STAGES: tuple[str, ...] = GRAPH.names  # in a topological order: the order stages are listed in
STAGE_WEIGHTS: dict[str, int] = {s.name: s.weight for s in GRAPH.stages}
STAGE_DEPENDENCIES: dict[str, tuple[str, ...]] = GRAPH.dependencies
