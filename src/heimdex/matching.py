"""Which enrolled person, if any, a face belongs to. Pure numpy; used at commit and at enrolment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def euclidean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) distances between rows of a and rows of b."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), dtype=np.float32)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def match_faces(
    faces: np.ndarray, person_ids: Sequence[str], photos: np.ndarray, max_distance: float
) -> dict[int, tuple[str, float]]:
    """Face row -> (person id, distance) for faces closer than max_distance to a person's photos.

    A face belongs to at most one person: the one whose nearest enrolled photo is closest.
    """
    distances = euclidean(faces.astype(np.float32), photos.astype(np.float32))
    matches: dict[int, tuple[str, float]] = {}
    if not distances.size:
        return matches
    nearest = distances.argmin(axis=1)
    for row, col in enumerate(nearest):
        distance = float(distances[row, col])
        if distance < max_distance:
            matches[row] = (person_ids[col], distance)
    return matches
