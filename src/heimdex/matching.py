"""Which enrolled person, if any, a face belongs to. Pure numpy; used at commit and at enrolment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class FaceMatch(NamedTuple):
    """A face's nearest enrolled person. `possible`: farther than the match distance but within the
    margin above it, so shown as "possibly" this person until someone confirms or rejects it."""

    person_id: str
    distance: float
    possible: bool = False


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) distances between rows of a and rows of b."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float32)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def match_faces(
    faces: np.ndarray,
    person_ids: Sequence[str],
    photos: np.ndarray,
    max_distance: float,
    possible_distance: float | None = None,
    rejected: tuple[Sequence[str], np.ndarray] | None = None,
) -> dict[int, FaceMatch]:
    """Face row -> its match, for faces closer than max_distance to a person's photos (and, as
    possible matches, closer than possible_distance).

    Every enrolled photo counts: a face belongs to at most one person, the one whose nearest photo is
    closest, so an old photo or a side view still finds the faces that resemble it. `rejected` (person
    per row, vectors) are faces the owner said are not that person: a face nearer one of them than to
    the person's nearest example is not matched to them (it looks like the one rejected).
    """
    limit = max(max_distance, possible_distance or 0.0)
    distances = euclidean(faces.astype(np.float32), photos.astype(np.float32))
    matches: dict[int, FaceMatch] = {}
    if not distances.size:
        return matches
    nearest = distances.argmin(axis=1)
    for row, col in enumerate(nearest):
        distance = float(distances[row, col])
        if distance < limit:
            matches[row] = FaceMatch(person_ids[col], distance, possible=distance >= max_distance)
    if rejected is not None and len(rejected[0]):
        _drop_rejected_look_alikes(faces, matches, rejected)
    return matches


def _drop_rejected_look_alikes(
    faces: np.ndarray, matches: dict[int, FaceMatch], rejected: tuple[Sequence[str], np.ndarray]
) -> None:
    people, vectors = rejected
    if not matches:
        return
    rows = sorted(matches)
    near = euclidean(faces[rows].astype(np.float32), vectors.astype(np.float32))
    for i, row in enumerate(rows):
        theirs = [j for j, p in enumerate(people) if p == matches[row].person_id]
        if theirs and float(near[i, theirs].min()) < matches[row].distance:
            del matches[row]
