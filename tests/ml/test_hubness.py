"""Query centring against hubs, with the real e5 model: short English captions sit near every Korean
query; centring Korean queries on the mean Korean query pushes them back without losing the match."""

from __future__ import annotations

import numpy as np
import pytest

from heimdex.search.hubness import QueryCentring, language_of

SCENES = [
    "Our guest tonight talks about the garden she planted on her rooftop.",
    "The housing committee voted to build two hundred affordable apartments near the train station.",
    "Police are asking riders to wear helmets after a rise in accidents on the coastal road.",
    "GALLERY OPENING FRIDAY",  # the hubs: short captions
    "LUNAR ECLIPSE TONIGHT",
]
HUBS = [3, 4]
KOREAN = {  # query -> the scene it means
    "철도 근처의 저렴한 주택": 1,
    "오토바이 운전자를 위한 안전 경고": 2,
    "옥상 정원 이야기": 0,
}


@pytest.fixture(scope="module")
def scenes(models) -> np.ndarray:
    return models.text.embed_passages(SCENES)


def corrected_scores(centring: QueryCentring, embedder, query: str, scenes: np.ndarray) -> np.ndarray:
    """What the search engine ranks by: the store's cosine with the centred vector, times the scale."""
    vector, scale = centring.centre(embedder, query, embedder.embed_queries([query])[0])
    return (scenes @ vector) * scale


def test_language_of() -> None:
    assert language_of("옥상 정원") == "ko" and language_of("ㅋㅋ") == "ko"
    assert language_of("rooftop garden") == "en" and language_of("café 2024") == "en"


def test_centring_pushes_hubs_back_for_korean_queries(models, scenes) -> None:
    embedder = models.text
    plain, centred = QueryCentring({"ko": 0.0}), QueryCentring()
    for query, target in KOREAN.items():
        before = corrected_scores(plain, embedder, query, scenes)
        after = corrected_scores(centred, embedder, query, scenes)
        margin_before = before[target] - before[HUBS].max()
        margin_after = after[target] - after[HUBS].max()
        assert after.argmax() == target, (query, after.round(3))
        assert margin_after > margin_before, (query, margin_before, margin_after)
        # with strength 0 the score is the plain cosine
        np.testing.assert_allclose(before, scenes @ embedder.embed_queries([query])[0], atol=1e-5)


def test_english_queries_are_left_alone(models, scenes) -> None:
    query = models.text.embed_queries(["rooftop garden"])[0]
    vector, scale = QueryCentring().centre(models.text, "rooftop garden", query)
    assert scale == 1.0 and np.array_equal(vector, query)


def test_the_mean_is_computed_once_per_model_and_language(models) -> None:
    centring = QueryCentring()
    vector = models.text.embed_queries(["옥상 정원"])[0]
    first, _ = centring.centre(models.text, "옥상 정원", vector)
    mean = centring._arrays[(models.text.name, "ko-mean")]
    again, _ = centring.centre(models.text, "정원", vector)
    assert centring._arrays[(models.text.name, "ko-mean")] is mean and np.array_equal(first, again)
    np.testing.assert_allclose(np.linalg.norm(first), 1.0, atol=1e-5)


def test_the_mean_is_kept_on_disk_for_the_next_process(models, tmp_path) -> None:
    first = QueryCentring(cache_dir=tmp_path)
    vector = models.text.embed_queries(["옥상 정원"])[0]
    centred, _ = first.centre(models.text, "옥상 정원", vector)
    [saved] = (tmp_path / "query-means").glob("ko-*.npy")
    assert not list((tmp_path / "query-means").glob("*.tmp"))

    class NoEmbedding:  # a second process reads the file and embeds nothing
        name, dim = models.text.name, models.text.dim

        def embed_queries(self, texts):
            raise AssertionError("the mean should come from the cache")

    again, _ = QueryCentring(cache_dir=tmp_path).centre(NoEmbedding(), "옥상 정원", vector)
    np.testing.assert_array_equal(centred, again)
    saved.write_bytes(b"not numpy")  # a damaged file is recomputed, not trusted
    fixed, _ = QueryCentring(cache_dir=tmp_path).centre(models.text, "옥상 정원", vector)
    np.testing.assert_allclose(fixed, centred, atol=1e-6)
