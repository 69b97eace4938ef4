"""Metadata, vectors and full text: SQLite (embedded) behind the Store interface."""

from heimdex.store.base import (
    CommitBundle,
    MatchView,
    SceneFilter,
    ScoredScene,
    Store,
    VectorSet,
    WindowVectors,
    open_store,
)

__all__ = [
    "CommitBundle",
    "MatchView",
    "SceneFilter",
    "ScoredScene",
    "Store",
    "VectorSet",
    "WindowVectors",
    "open_store",
]
