import numpy as np

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
    assert {row: pid for row, (pid, _) in matches.items()} == {0: "ann", 1: "bob"}


def test_no_people_no_matches():
    assert match_faces(np.zeros((2, 128)), [], np.zeros((0, 128)), 0.6) == {}
