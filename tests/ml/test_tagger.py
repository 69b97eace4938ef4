"""EfficientNet-Lite3 + SSD MobileNet v2 on real photos and a real street video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from heimdex.domain import Tag
from heimdex.ml.base import ImageTagger
from heimdex.ml.tagger import COCO_LABELS, VisualTagger, content_box, frame_squares, readable_label
from tests import assets
from tests.ml.conftest import load_rgb, video_frame


@pytest.fixture(scope="module")
def tagger(models) -> VisualTagger:
    return models.tagger


@pytest.fixture(scope="module")
def tagged(tagger) -> dict[str, list[Tag]]:
    images = {
        "cat": load_rgb(assets.skimage_photo("chelsea")),
        "coffee": load_rgb(assets.skimage_photo("coffee")),
        "street": video_frame(assets.opencv_sample("vtest.avi"), 100),
        "football": load_rgb(assets.opencv_sample("messi5.jpg")),
        "gray": np.asarray(load_rgb(assets.skimage_photo("camera")))[:, :, 0],  # single channel
    }
    return dict(zip(images, tagger.tag(list(images.values())), strict=True))


def _labels(tags: list[Tag]) -> str:
    return " | ".join(t.label for t in tags).lower()


def test_is_an_image_tagger(tagger) -> None:
    assert isinstance(tagger, ImageTagger)
    assert tagger.tag([]) == []


def test_cat_photo(tagged) -> None:
    assert "cat" in _labels(tagged["cat"])
    assert any(t.source == "imagenet" and "cat" in t.label for t in tagged["cat"])


def test_coffee_photo(tagged) -> None:
    labels = _labels(tagged["coffee"])
    assert "cup" in labels or "espresso" in labels


def test_street_has_people(tagged) -> None:
    by_label = {t.label: t for t in tagged["street"]}
    assert by_label["person"].source == "coco" and by_label["person"].score >= 0.5
    assert "people" in by_label  # several pedestrians, so "people walking" has a tag to match


def test_football(tagged) -> None:
    labels = _labels(tagged["football"])
    assert "person" in labels and "ball" in labels


def test_tags_are_sorted_unique_and_scored(tagged) -> None:
    for tags in tagged.values():
        scores = [t.score for t in tags]
        assert scores == sorted(scores, reverse=True)
        assert len({t.label for t in tags}) == len(tags)
        assert all(0 < t.score <= 1 and t.source in {"imagenet", "coco"} for t in tags)


def test_min_score_filters_the_classifier(models) -> None:
    strict = VisualTagger(threads=models.settings.cpu_threads, min_score=0.99, detection_score=0.99)
    assert strict.tag([load_rgb(assets.skimage_photo("coffee"))]) == [[]]


def test_readable_labels() -> None:
    assert readable_label("tabby, tabby cat", 281) == "tabby cat"
    assert readable_label("golden retriever", 207) == "golden retriever, dog"
    assert readable_label("laptop, laptop computer", 620) == "laptop computer"
    raw = "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias"
    shark = readable_label(raw, 2)
    assert "Carcharodon" not in shark and shark.startswith("great white shark")
    assert len(COCO_LABELS) == 90 and COCO_LABELS[1] == "person"


def test_all_imagenet_labels_are_readable(tagger) -> None:
    assert len(tagger.labels) == 1000 and all(label.strip() for label in tagger.labels)
    assert sum("dog" in label for label in tagger.labels) >= 118


def test_threads_sharing_the_tagger_get_their_own_answers(tagger) -> None:
    """The worker tags frames while the API enrols a pet's photo: one interpreter, two threads."""
    from concurrent.futures import ThreadPoolExecutor

    images = [load_rgb(assets.skimage_photo("chelsea")), load_rgb(assets.skimage_photo("coffee"))]
    alone = [tagger.class_probabilities(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(tagger.class_probabilities, images * 20))
    for i, probs in enumerate(together):
        np.testing.assert_allclose(probs, alone[i % 2], atol=1e-6)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (round(w * height / h), height), interpolation=cv2.INTER_AREA)


def test_the_bars_around_a_photo_are_cut() -> None:
    photo = _fit_height(load_rgb(assets.skimage_photo("chelsea")), 300)
    frame = np.zeros((360, 640, 3), dtype=np.uint8)
    frame[30:330, 95 : 95 + photo.shape[1]] = photo
    content = content_box(frame)
    assert content.shape == photo.shape
    assert [s.shape[:2] for s in frame_squares(frame)] == [(300, 300), (300, 300), (300, 300)]


def test_a_subject_at_one_end_of_a_wide_frame_is_tagged(tagger) -> None:
    """Coffee on the left, the cat on the right: the centre square alone sees half of each."""
    coffee = _fit_height(load_rgb(assets.skimage_photo("coffee")), 360)
    cat = _fit_height(load_rgb(assets.skimage_photo("chelsea")), 360)
    frame = np.concatenate([coffee, cat], axis=1)
    assert frame.shape[1] >= 2 * frame.shape[0]
    labels = _labels(tagger.tag([frame])[0])
    assert "cat" in labels and ("espresso" in labels or "cup" in labels), labels
