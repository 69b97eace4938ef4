"""Unnamed people: faces grouped by identity, incrementally. Pure (numpy and dlib's graph clustering).

A new video's faces first join the existing clusters they are close to (no re-clustering of what is
there: the owner's names, merges and moves stay as they left them). The faces that join none are
clustered among themselves by chinese whispers (dlib), which needs no number of clusters: an edge
joins two faces closer than the distance, and each face takes the label most of its neighbours hold.
Only faces big and sharp enough seed a cluster; a small or blurred one joins a cluster or waits,
unclustered, for one to form near it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from heimdex.matching import euclidean

if TYPE_CHECKING:
    from heimdex.store.base import FaceClusters, Store

# A seed face's shorter side in the frame, and the sharpness (variance of the Laplacian) of its crop at
# media.FACE_CROP_PX. dlib's identity vectors drift apart below ~45 px (ml/faces.py). Sharpness, on
# KPhotoAlbum's faces in 640-px frames: 78-1580 as taken; a Gaussian blur of sigma 2 px brings a
# 100-px face to 14, sigma 5 a 250-px face to 22.
SEED_MIN_PX = 56.0
SEED_MIN_SHARPNESS = 30.0
# A face too small or blurred to seed joins only a nearer cluster: its vector is less sure. Measured
# (eval/face_clusters.py, distance 0.6): at 1.0, two labelled faces joined someone else's cluster
# (pairwise precision 0.88); at 0.8 none did (1.0), and recall fell from 0.71 to 0.40.
WEAK_JOIN = 0.8


@dataclass(frozen=True)
class ClusterPlan:
    """What to do with new faces: `joins` maps a row of the new faces to an existing cluster id;
    `groups` are new clusters, each a list of rows. Rows in neither stay unclustered."""

    joins: dict[int, str]
    groups: list[list[int]]


def can_seed(size_px: float, sharpness: float) -> bool:
    return size_px >= SEED_MIN_PX and sharpness >= SEED_MIN_SHARPNESS


def nearest_clusters(
    faces: np.ndarray, members: np.ndarray, member_clusters: Sequence[str], distance: float
) -> dict[int, str]:
    """Face row -> the cluster most of its members within `distance` belong to (ties: the nearest)."""
    found: dict[int, str] = {}
    d = euclidean(faces.astype(np.float32), members.astype(np.float32))
    for row in range(d.shape[0] if d.size else 0):
        near = np.flatnonzero(d[row] < distance)
        if not len(near):
            continue
        votes: dict[str, tuple[int, float]] = {}
        for col in near:
            count, best = votes.get(member_clusters[col], (0, np.inf))
            votes[member_clusters[col]] = (count + 1, min(best, float(d[row, col])))
        found[row] = min(votes, key=lambda c: (-votes[c][0], votes[c][1]))
    return found


def whispers(faces: np.ndarray, distance: float) -> list[list[int]]:
    """Chinese whispers over faces (rows): groups of rows, largest first."""
    if not len(faces):
        return []
    import dlib  # the face models' library, already a dependency

    d = euclidean(faces.astype(np.float32), faces.astype(np.float32))
    edges = [(i, i) for i in range(len(faces))]  # every face is a vertex, even one with no neighbour
    edges += [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(d < distance, 1)), strict=True)]
    labels = dlib.chinese_whispers(edges)
    groups: dict[int, list[int]] = {}
    for row, label in enumerate(labels):
        groups.setdefault(label, []).append(row)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def plan_clusters(
    faces: np.ndarray,
    seeds: Sequence[bool],
    members: np.ndarray,
    member_clusters: Sequence[str],
    distance: float,
    weak_join: float = WEAK_JOIN,
) -> ClusterPlan:
    """Where new faces go: existing clusters first, then new clusters seeded by good faces, which the
    remaining faces may join. A face that cannot seed joins within `weak_join` * distance."""
    joins: dict[int, str] = {}
    strong = [r for r in range(len(faces)) if seeds[r]]
    weak = [r for r in range(len(faces)) if not seeds[r]]
    if len(member_clusters):
        for rows, limit in ((strong, distance), (weak, distance * weak_join)):
            found = nearest_clusters(faces[rows], members, member_clusters, limit) if rows else {}
            joins.update({rows[row]: cluster for row, cluster in found.items()})
    seeding = [r for r in strong if r not in joins]
    groups = [[seeding[i] for i in g] for g in whispers(faces[seeding], distance)] if seeding else []
    others = [r for r in weak if r not in joins]
    if groups and others:
        grouped = [r for g in groups for r in g]
        labels = [str(i) for i, g in enumerate(groups) for _ in g]
        limit = distance * weak_join
        for row, label in nearest_clusters(faces[others], faces[grouped], labels, limit).items():
            groups[int(label)].append(others[row])
    return ClusterPlan(joins, groups)


def cluster_new_faces(store: FaceClusters, owner_id: str, model: str, distance: float) -> list[str]:
    """Cluster the owner's faces that are in no cluster yet (a new video's, and small or blurred ones
    still waiting); returns the ids of the clusters made."""
    faces = store.clustering_faces(owner_id, model)
    new = [i for i, c in enumerate(faces.clusters) if c is None]
    if not new:
        return []
    old = [i for i, c in enumerate(faces.clusters) if c is not None]
    plan = plan_clusters(
        faces.vectors[new],
        [can_seed(faces.size_px[i], faces.sharpness[i]) for i in new],
        faces.vectors[old],
        [faces.clusters[i] for i in old],  # type: ignore[misc]
        distance,
    )
    pk = [faces.pks[i] for i in new]
    return store.add_to_clusters(
        owner_id, {pk[row]: c for row, c in plan.joins.items()}, [[pk[r] for r in g] for g in plan.groups]
    )


def attach_matched_clusters(store: Store, owner_id: str) -> int:
    """Give each unnamed cluster to the enrolled person most of its faces surely match (an enrolment
    by photo joins the cluster of that face); returns how many were given."""
    sizes = {c.id: c.face_count for c in store.list_clusters(owner_id, hidden=True, best=0)}
    given: set[str] = set()
    for cluster_id, person_id, matched in store.cluster_votes(owner_id):  # most matched first
        if cluster_id not in given and 2 * matched > sizes.get(cluster_id, 0):
            store.set_cluster_person(owner_id, cluster_id, person_id)
            given.add(cluster_id)
    return len(given)
