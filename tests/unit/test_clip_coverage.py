"""Which model's frame vectors serve an owner while the CLIP-style model changes (pure rule)."""

from __future__ import annotations

from heimdex.ml.base import IMAGE_VECTOR_MODEL as TAGGER
from heimdex.search.clip_coverage import clip_coverage


def test_the_configured_model_serves_once_it_covers_every_frame():
    done = clip_coverage({TAGGER: 40, "b": 40}, "b")
    assert (done.serving, done.complete, done.missing) == ("b", True, 0)
    assert clip_coverage({TAGGER: 40, "a": 40, "b": 40}, "b").serving == "b", "before the old ones go"


def test_the_earlier_model_serves_until_the_new_set_is_complete():
    for embedded in (0, 1, 20, 39):
        during = clip_coverage({TAGGER: 40, "a": 40, "b": embedded}, "b")
        assert (during.serving, during.complete, during.missing) == ("a", False, 40 - embedded)
    # A video indexed during the change has only b's vectors: a still serves, and covers less.
    assert clip_coverage({TAGGER: 45, "a": 40, "b": 30}, "b").serving == "a"
    assert clip_coverage({TAGGER: 40, "old": 10, "a": 40, "b": 5}, "b").serving == "a", "the fullest"


def test_no_partial_set_serves():
    assert clip_coverage({TAGGER: 40, "b": 12}, "b").serving is None, "CLIP newly on: the tagger's"
    # A worker still configured with a indexed a video after a's vectors were retired.
    stray = clip_coverage({TAGGER: 44, "a": 4, "b": 40}, "b")
    assert stray.serving is None and stray.missing == 4
    assert clip_coverage({}, "b").serving is None and clip_coverage({TAGGER: 3}, "b").missing == 3


def test_without_a_configured_model_nothing_serves():
    off = clip_coverage({TAGGER: 40, "a": 40}, None)
    assert (off.serving, off.complete, off.missing, off.frames) == (None, False, 0, 40)
