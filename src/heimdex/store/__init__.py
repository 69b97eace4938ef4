"""Metadata, vectors and full text behind the Store roles: one SQL store over SQLite or PostgreSQL."""

from heimdex.store.base import (
    ClusteringFaces,
    CommitBundle,
    FaceClusters,
    FrameVectors,
    JobLedger,
    MatchView,
    PeopleStore,
    SceneFilter,
    SceneIndex,
    ScoredScene,
    Store,
    VectorSet,
    VideoStore,
    WindowVectors,
    open_store,
)

__all__ = [
    "ClusteringFaces",
    "CommitBundle",
    "FaceClusters",
    "FrameVectors",
    "JobLedger",
    "MatchView",
    "PeopleStore",
    "SceneFilter",
    "SceneIndex",
    "ScoredScene",
    "Store",
    "VectorSet",
    "VideoStore",
    "WindowVectors",
    "open_store",
]
