"""Clustering real faces (faceclusters.py): KPhotoAlbum's photos of Jesper, Anne Helene, Jim and Wayne,
through BlazeFace and dlib, as 640-pixel frames like the pipeline's."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heimdex import faceclusters
from heimdex.domain import DetectedFace
from heimdex.media import face_crop, sharpness
from tests import assets
from tests.ml.conftest import load_rgb

DISTANCE = 0.6  # the face_cluster_distance setting's default


def frame(name: str, side: int = 640) -> np.ndarray:
    image = load_rgb(assets.kphotoalbum_photo(name))
    scale = side / max(image.shape[:2])
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def seen(models) -> dict[str, list[DetectedFace]]:
    names = ("jesper.jpg", "jesper_2.jpg", "qt-logo.jpg", "bar55.jpg", "bar55_2.jpg")
    return {name: models.faces.analyze(frame(name)) for name in names}


def vectors(faces: list[DetectedFace]) -> np.ndarray:
    return np.array([f.embedding for f in faces], dtype=np.float32)


def by_x(faces: list[DetectedFace]) -> list[DetectedFace]:
    return sorted(faces, key=lambda f: f.box.x)


def test_whispers_groups_each_person_without_a_number_of_clusters(seen) -> None:
    wayne, jesper_qt, jim = by_x(seen["qt-logo.jpg"])
    faces = [seen["jesper.jpg"][0], seen["jesper_2.jpg"][0], jesper_qt, wayne, jim]
    groups = faceclusters.whispers(vectors(faces), DISTANCE)
    assert groups[0] == [0, 1, 2], "Jesper's three faces first (largest)"
    assert sorted(groups[1:]) == [[3], [4]], "Wayne and Jim apart"


def test_new_faces_join_existing_clusters_and_seed_new_ones(seen) -> None:
    wayne, jesper_qt, _ = by_x(seen["qt-logo.jpg"])
    members = vectors([seen["jesper.jpg"][0], jesper_qt])
    anne, jesper_bar = by_x(seen["bar55_2.jpg"])  # Anne Helene left of Jesper
    new = vectors([jesper_bar, anne, wayne, seen["jesper_2.jpg"][0]])
    plan = faceclusters.plan_clusters(new, [True, True, True, True], members, ["J", "J"], DISTANCE)
    assert plan.joins == {0: "J", 3: "J"}
    assert sorted(plan.groups) == [[1], [2]], "Anne Helene and Wayne are new people"


def test_weak_faces_join_but_never_seed(seen) -> None:
    anne, jesper = by_x(seen["bar55.jpg"])
    anne_2, _ = by_x(seen["bar55_2.jpg"])
    new = vectors([anne, jesper, anne_2])
    plan = faceclusters.plan_clusters(new, [False, False, True], np.zeros((0, 128)), [], DISTANCE)
    assert plan.joins == {}
    assert plan.groups == [[2, 0]], "her weak face joins the seed of her other photo; his waits"


def test_small_or_blurred_faces_cannot_seed(models) -> None:
    image = frame("bar55.jpg")
    for face in models.faces.analyze(image):
        size = min(face.box.w * image.shape[1], face.box.h * image.shape[0])
        assert faceclusters.can_seed(size, sharpness(face_crop(image, face.box)))
        blurred = cv2.GaussianBlur(image, (0, 0), 2.0)
        assert not faceclusters.can_seed(size, sharpness(face_crop(blurred, face.box)))
    small = frame("anne_helene.jpg", side=340)  # her face about 50 px
    (face,) = models.faces.analyze(small)
    size = min(face.box.w * small.shape[1], face.box.h * small.shape[0])
    assert 40 <= size < faceclusters.SEED_MIN_PX
    assert not faceclusters.can_seed(size, sharpness(face_crop(small, face.box)))
