"""BlazeFace + dlib on kphotoalbum's demo photos of named people (Jesper, Anne Helene)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heimdex.ml import faces as faces_module
from heimdex.ml.base import FaceAnalyzer
from heimdex.ml.faces import MIN_FACE_PX, FaceEmbedderDlib
from tests import assets
from tests.ml.conftest import load_rgb

SAME_PERSON = 0.6


@pytest.fixture(scope="module")
def faces(models) -> FaceEmbedderDlib:
    return models.faces


def _one_face(faces: FaceEmbedderDlib, name: str) -> np.ndarray:
    found = faces.analyze(load_rgb(assets.kphotoalbum_photo(name)))
    assert len(found) == 1, f"{name}: {len(found)} faces"
    return np.asarray(found[0].embedding, dtype=np.float32)


@pytest.fixture(scope="module")
def people(faces) -> dict[str, np.ndarray]:
    return {name: _one_face(faces, f"{name}.jpg") for name in ("jesper", "jesper_2", "anne_helene")}


def test_is_a_face_analyzer(faces) -> None:
    assert isinstance(faces, FaceAnalyzer) and faces.dim == 128


def test_same_person_is_close(faces, people) -> None:
    assert faces.distance(people["jesper"][None], people["jesper_2"][None])[0, 0] < SAME_PERSON


def test_different_people_are_far(faces, people) -> None:
    anne = people["anne_helene"][None]
    assert faces.distance(people["jesper"][None], anne)[0, 0] > SAME_PERSON
    assert faces.distance(people["jesper_2"][None], anne)[0, 0] > SAME_PERSON


def test_group_photo_matches_each_person(faces, people) -> None:
    # bar55.jpg shows Anne Helene and Jesper together.
    found = faces.analyze(load_rgb(assets.kphotoalbum_photo("bar55.jpg")))
    assert len(found) == 2
    group = np.asarray([f.embedding for f in found], dtype=np.float32)
    known = np.stack([people["jesper"], people["anne_helene"]])
    distances = faces.distance(group, known)
    assert distances.shape == (2, 2)
    assert sorted(distances.argmin(axis=1).tolist()) == [0, 1]  # one of each
    assert (distances.min(axis=1) < SAME_PERSON).all()


def test_boxes_and_scores(faces) -> None:
    found = faces.analyze(load_rgb(assets.kphotoalbum_photo("jesper_2.jpg")))
    box = found[0].box
    assert 0 <= box.x < box.x + box.w <= 1 and 0 <= box.y < box.y + box.h <= 1
    assert 0.2 < box.x + box.w / 2 < 0.8  # he is in the middle of the photo
    assert 0.5 < found[0].score <= 1 and len(found[0].embedding) == 128


@pytest.mark.parametrize("photo", ["coffee", "chelsea"])
def test_no_face_on_objects_and_animals(faces, photo) -> None:
    assert faces.analyze(load_rgb(assets.skimage_photo(photo))) == []


def test_no_face_on_a_dog(faces) -> None:
    assert faces.analyze(load_rgb(assets.kphotoalbum_photo("donna.jpg"))) == []  # Donna is a dog


def test_a_patch_blazeface_takes_for_a_face_is_ruled_out_by_the_second_detector(faces) -> None:
    """BlazeFace scores a patch of opencv-doc's apple 0.65 as a face; dlib's HOG detector sees no face
    in its crop, upright or turned, so the analyzer keeps none (nor embeds it)."""
    image = load_rgb(assets.opencv_sample("apple.jpg"))
    assert faces._detect(image), "BlazeFace alone takes it for a face"
    assert faces.analyze(image) == []


def test_a_tilted_head_is_confirmed_with_its_crop_turned(faces, monkeypatch) -> None:
    """new_wave_1.jpg: a man lying with his head tilted on his hand. The HOG detector
    sees his face only in the crop turned back, so without the turns he would be lost."""
    image = load_rgb(assets.kphotoalbum_photo("new_wave_1.jpg"))
    found = faces.analyze(image)
    assert len(found) == 1 and found[0].score > 0.6
    monkeypatch.setattr(faces_module, "_CHECK_TURNS", (0.0,))
    assert faces.analyze(image) == []


def test_tiny_faces_are_skipped(faces) -> None:
    image = load_rgb(assets.kphotoalbum_photo("anne_helene.jpg"))  # her face is ~88 px
    small = cv2.resize(image, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)  # ~26 px < MIN_FACE_PX
    assert MIN_FACE_PX > 26 and faces.analyze(small) == []


def test_distance_shapes(faces, people) -> None:
    stacked = np.stack(list(people.values()))
    distances = faces.distance(stacked, stacked)
    assert distances.shape == (3, 3) and np.allclose(np.diag(distances), 0, atol=1e-3)
    assert faces.distance(np.zeros((0, 128)), stacked).shape == (0, 3)
    assert faces.analyze(np.zeros((8, 8, 3), np.uint8)) == []


def _letterboxed(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """A photo filmed: scaled into a width x height frame with black bars."""
    scale = min(width / image.shape[1], height / image.shape[0])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)))
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - small.shape[0]) // 2, (width - small.shape[1]) // 2
    frame[y : y + small.shape[0], x : x + small.shape[1]] = small
    return frame


def test_a_small_face_in_a_wide_frame_is_found_inside_its_persons_box(faces, models) -> None:
    """wayne.jpg filmed at 1280x720: two men at a pool table, faces 54 px and 38 px. BlazeFace finds
    neither in the whole frame; given the detector's person boxes, it finds both in squares at the
    top of them, and the one large enough to embed (Wayne's) is kept."""
    # KPhotoAlbum keeps this photo sideways and records a turn of 90 degrees clockwise.
    upright = cv2.rotate(load_rgb(assets.kphotoalbum_photo("wayne.jpg")), cv2.ROTATE_90_CLOCKWISE)
    frame = _letterboxed(upright, 1280, 720)
    assert faces.analyze(frame) == []
    people = [o.box for o in models.tagger.detect_objects(frame) if o.label == "person"]
    assert len(people) == 2
    found = faces.analyze(frame, people)
    assert len(found) == 1 and found[0].box.w * 1280 >= MIN_FACE_PX
    assert sum(p.holds_centre_of(found[0].box) for p in people) >= 1
    assert faces.analyze(frame, people) == found  # the same again: nothing random
