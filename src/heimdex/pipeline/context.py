"""What a stage gets: the video, settings, store, blobs, models, and its artifacts folder.

Artifacts are the stages' typed outputs (pipeline/artifacts.py), kept in blob storage under
`videos/<id>/work/` so that a run killed at any point (or resumed by another worker) finds them again.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, TypeAdapter

from heimdex.blobs import BlobStore
from heimdex.blobs.keys import work_key, work_prefix
from heimdex.domain import Video
from heimdex.ml.registry import Models
from heimdex.pipeline.artifacts import Artifact
from heimdex.settings import Settings
from heimdex.store import Store

T = TypeVar("T")
ProgressFn = Callable[[float], None]


class UndeclaredArtifact(RuntimeError):
    """A stage read or wrote an artifact its declaration in pipeline/graph.py does not list."""


class Artifacts:
    """A video's artifacts. The runner hands each stage a view limited to what the stage declares
    (`only`): reading anything else, or writing anything but its outputs, is UndeclaredArtifact."""

    def __init__(self, blobs: BlobStore, video_id: str) -> None:
        self.blobs = blobs
        self.video_id = video_id
        self.prefix = work_prefix(video_id)
        self._stage: str | None = None
        self._reads: frozenset[str] | None = None  # None: anything
        self._writes: frozenset[str] | None = None

    def only(self, stage: str, reads: Iterable[Artifact], writes: Iterable[Artifact]) -> Artifacts:
        """A view for one stage: it reads `reads` (and its own `writes`) and writes `writes`."""
        view = Artifacts(self.blobs, self.video_id)
        view._stage = stage
        view._writes = frozenset(a.name for a in writes)
        view._reads = frozenset(a.name for a in reads) | view._writes
        return view

    def key(self, artifact: Artifact) -> str:
        if artifact.source:
            raise ValueError(f"{artifact} is not a work artifact: stages open it by its own key")
        return work_key(self.video_id, artifact.name)

    def _check(self, artifact: Artifact, allowed: frozenset[str] | None, verb: str) -> str:
        if allowed is not None and artifact.name not in allowed:
            raise UndeclaredArtifact(f"{self._stage} {verb} {artifact}, which its declaration does not list")
        return self.key(artifact)

    def exists(self, artifact: Artifact) -> bool:
        return self.blobs.exists(self._check(artifact, self._reads, "reads"))

    def save(self, artifact: Artifact[T], value: T) -> None:
        key = self._check(artifact, self._writes, "writes")
        if artifact.is_array:
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            self.blobs.put_bytes(key, buffer.getvalue())
            return
        data = (
            value.model_dump_json()
            if isinstance(value, BaseModel)
            else _adapter(type(value)).dump_json(value)
        )
        self.blobs.put_bytes(key, data if isinstance(data, bytes) else data.encode())

    def load(self, artifact: Artifact[T]) -> T:
        data = self.blobs.get_bytes(self._check(artifact, self._reads, "reads"))
        if artifact.is_array:
            return np.load(io.BytesIO(data), allow_pickle=False)
        return TypeAdapter(artifact.kind).validate_json(data)

    def clear(self) -> None:
        self.blobs.delete_prefix(self.prefix)


def _adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


@dataclass
class StageContext:
    video: Video
    settings: Settings
    store: Store
    blobs: BlobStore
    models: Models
    artifacts: Artifacts
    progress: ProgressFn = field(default=lambda fraction: None)
    # The local files the original was opened as (a stored copy, a cache entry): decoders' errors
    # name them, and the runner says the user's file name instead.
    opened_as: set[str] = field(default_factory=set)

    @contextmanager
    def original(self) -> Iterator[Path]:
        """The original as a local file, for decoders."""
        with self.blobs.local_path(self.video.original_key) as path:
            self.opened_as.update((str(path), path.name))
            yield path
