import numpy as np
import pytest

from heimdex.matching import euclidean, match_faces


def test_euclidean_matches_numpy_norm():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 128)), rng.normal(size=(3, 128))
    expected = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    assert np.allclose(euclidean(a, b), expected, atol=1e-4)


def test_each_face_goes_to_the_closest_person_under_the_threshold():
    photos = np.array([[0.0, 0.0], [1.0, 0.0]])
    faces = np.array([[0.1, 0.0], [0.9, 0.0], [5.0, 5.0]])
    matches = match_faces(faces, ["ann", "bob"], photos, max_distance=0.6)
    assert {row: m.person_id for row, m in matches.items()} == {0: "ann", 1: "bob"}
    assert not any(m.possible for m in matches.values())


def test_faces_just_past_the_threshold_are_possible_matches():
    photos = np.array([[0.0, 0.0], [0.0, 3.0]])  # ann's two photos: one old, far from the other
    faces = np.array([[0.3, 0.0], [0.62, 0.0], [0.0, 3.65], [0.7, 0.0]])
    matches = match_faces(faces, ["ann", "ann"], photos, max_distance=0.6, possible_distance=0.66)
    assert sorted(matches) == [0, 1, 2], "past the margin (0.7) is nobody"
    assert [matches[r].possible for r in (0, 1, 2)] == [False, True, True]
    assert matches[2].distance == pytest.approx(0.65, abs=1e-5)
    assert match_faces(faces, ["ann", "ann"], photos, max_distance=0.6).keys() == {0}


def test_no_people_no_matches():
    assert match_faces(np.zeros((2, 128)), [], np.zeros((0, 128)), 0.6) == {}


def test_a_face_like_one_rejected_for_a_person_is_not_theirs():
    photos = np.array([[0.0, 0.0]])
    faces = np.array([[0.5, 0.0], [-0.5, 0.0]])  # both 0.5 from ann's photo
    rejected = (["ann"], np.array([[0.6, 0.0]]))  # the owner said a face here is not ann
    matches = match_faces(faces, ["ann"], photos, max_distance=0.6, rejected=rejected)
    assert sorted(matches) == [1], "the face 0.1 from the rejected one is not hers; the other is"
    others = (["bob"], np.array([[0.6, 0.0]]))  # rejected for someone else: no bearing on ann
    assert sorted(match_faces(faces, ["ann"], photos, max_distance=0.6, rejected=others)) == [0, 1]
