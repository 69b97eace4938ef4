"""What a stage gets: the video, settings, store, blobs, models, and its artifacts folder.

Artifacts are the stages' typed outputs, kept in blob storage under `videos/<id>/work/` so that a
run killed at any point (or resumed by another worker) finds them again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, TypeAdapter

from heimdex.blobs import BlobStore
from heimdex.blobs.keys import work_prefix
from heimdex.domain import Video
from heimdex.ml.registry import Models
from heimdex.settings import Settings
from heimdex.store import Store

T = TypeVar("T")
ProgressFn = Callable[[float], None]


class Artifacts:
    def __init__(self, blobs: BlobStore, video_id: str) -> None:
        self.blobs = blobs
        self.prefix = work_prefix(video_id)

    def key(self, name: str) -> str:
        return self.prefix + name

    def exists(self, name: str) -> bool:
        return self.blobs.exists(self.key(name))

    def save(self, name: str, value: BaseModel | list | dict | str) -> None:
        data = (
            value.model_dump_json()
            if isinstance(value, BaseModel)
            else _adapter(type(value)).dump_json(value)
        )
        self.blobs.put_bytes(self.key(name), data if isinstance(data, bytes) else data.encode())

    def load(self, name: str, kind: type[T]) -> T:
        return TypeAdapter(kind).validate_json(self.blobs.get_bytes(self.key(name)))

    def save_array(self, name: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self.blobs.put_bytes(self.key(name), buffer.getvalue())

    def load_array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.blobs.get_bytes(self.key(name))), allow_pickle=False)

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
