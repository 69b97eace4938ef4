"""Query centring: a cheap correction for hubs in the multilingual embedding space.

e5 vectors share a large common direction, and queries in one language share another. A Korean query
about mountain roads sat closer to a short English caption ("LUNAR ECLIPSE TONIGHT") than to the
scene that talks about snow on the mountain pass: such short passages are "hubs", near every query
of a language. Subtracting the mean vector of typical queries in the query's language removes what
all those queries have in common, so what is left is what this query says:

    score(q, d) = cos(q, d) - strength[lang] * (mean_query[lang] . d)

Since scene vectors are unit length, ranking by that score is ranking by cosine with the vector
q - strength[lang] * mean_query[lang]: the stores need no change, PostgreSQL's HNSW index included.

The reference queries below are generic and have nothing to do with any evaluation set. Their mean
per language and embedding model is computed once (30 short embeddings, 0.5-3 s depending on load)
and kept in the model cache folder, so a CLI search, a new process each time, does not pay it again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from contextlib import suppress
from pathlib import Path

import numpy as np

from heimdex.ml.base import TextEmbedder

# How much of the mean to subtract, per query language. Korean queries over English speech suffer
# from hubs (the language gap puts every Korean query near the same short captions); English queries
# over English text do not, and centring them only reshuffled near-ties. docs/QUALITY.md has the sweep
# (eval/ko_dev_spec.json: Korean queries over the shared dev corpus).
STRENGTH = {"ko": 0.5, "en": 0.0}

REFERENCE_QUERIES: dict[str, tuple[str, ...]] = {
    "en": (
        "when did she talk about the budget",
        "the part where they explain the results",
        "a man speaking at a podium",
        "children playing in a park",
        "cooking pasta in the kitchen",
        "interview about climate change",
        "the goal in the second half",
        "a car driving at night",
        "dog running on the beach",
        "people dancing at a wedding",
        "how to fix a leaking tap",
        "the teacher writes on the board",
        "news about the election",
        "sunset over the sea",
        "opening remarks of the meeting",
        "a cat sleeping on a sofa",
        "birthday cake with candles",
        "traffic jam on the highway",
        "explanation of the new product",
        "the doctor talks about symptoms",
        "a city skyline at dusk",
        "farmers market sign",
        "a train arriving at the station",
        "someone playing the guitar",
        "the weather forecast for tomorrow",
        "questions from the audience",
        "mountains covered in snow",
        "a baby laughing",
        "price of the house",
        "the end credits",
    ),
    "ko": (
        "그녀가 예산에 대해 이야기한 부분",
        "결과를 설명하는 장면",
        "연단에서 연설하는 남자",
        "공원에서 노는 아이들",
        "부엌에서 파스타 요리하기",
        "기후 변화에 관한 인터뷰",
        "후반전의 골 장면",
        "밤에 운전하는 자동차",
        "해변을 달리는 강아지",
        "결혼식에서 춤추는 사람들",
        "새는 수도꼭지 고치는 방법",
        "칠판에 글을 쓰는 선생님",
        "선거에 관한 뉴스",
        "바다 위의 일몰",
        "회의의 개회사",
        "소파에서 자는 고양이",
        "촛불이 켜진 생일 케이크",
        "고속도로의 교통 체증",
        "신제품 설명",
        "증상에 대해 말하는 의사",
        "해질녘 도시의 스카이라인",
        "농산물 시장 간판",
        "역에 도착하는 기차",
        "기타를 치는 사람",
        "내일 날씨 예보",
        "청중의 질문",
        "눈 덮인 산",
        "웃는 아기",
        "집 가격",
        "마지막 크레딧",
    ),
}


# Everyday sentences about nothing in particular, unrelated to any evaluation set: the level of
# similarity that any query reaches without a real match (see QueryCentring.background_level).
BACKGROUND_PASSAGES: tuple[str, ...] = (
    "The meeting was moved to next Tuesday afternoon.",
    "She bought bread and milk at the corner shop.",
    "The train was delayed by twenty minutes this morning.",
    "He painted the fence white last summer.",
    "Our team finished the project ahead of schedule.",
    "It rained all weekend, so we stayed indoors.",
    "The children walked to school together.",
    "Please remember to switch off the lights.",
    "The restaurant on the square serves good soup.",
    "I called my sister to wish her a happy birthday.",
    "The new software update fixed several bugs.",
    "They watched a film and went to bed early.",
    "The garden needs watering every evening.",
    "Prices at the supermarket went up again.",
    "The museum is closed on Mondays.",
    "We drove to the coast for a short holiday.",
    "The doctor said the results look normal.",
    "A package arrived for you yesterday.",
    "The football match ended in a draw.",
    "The library has extended its opening hours.",
    "My phone battery runs out too quickly.",
    "The cat sat on the windowsill all day.",
    "The bus stop is just around the corner.",
    "He is learning to play the piano.",
    "The office kitchen needs a new kettle.",
    "We planted three apple trees in the spring.",
    "The report is due at the end of the month.",
    "Traffic was heavy on the way home.",
    "She wrote a long letter to her grandmother.",
    "The concert tickets sold out in an hour.",
)


def language_of(text: str) -> str:
    """The reference language for a query: Korean when it has Hangul, otherwise English."""
    return "ko" if any("\uac00" <= ch <= "\ud7a3" or "\u3131" <= ch <= "\u318e" for ch in text) else "en"


class QueryCentring:
    """Mean reference-query vectors per (model, language) and the background passages' vectors per
    model, computed on first use."""

    def __init__(self, strength: dict[str, float] | None = None, cache_dir: Path | None = None) -> None:
        self.strength = dict(STRENGTH if strength is None else strength)
        self.cache_dir = cache_dir
        self._arrays: dict[tuple[str, str], np.ndarray] = {}  # mean queries, background passages
        self._lock = threading.Lock()

    def centre(self, embedder: TextEmbedder, text: str, vector: np.ndarray) -> tuple[np.ndarray, float]:
        """The vector to search with, unit length, and the factor that turns the store's cosine with
        it back into the corrected score of the formula above (the semantic margin is in those units)."""
        language = language_of(text)
        strength = self.strength.get(language, 0.0)
        if strength <= 0:
            return vector, 1.0
        shifted = vector - strength * self._mean(embedder, language)
        norm = float(np.linalg.norm(shifted))
        if norm < 1e-6:  # the query is the mean query: nothing to correct
            return vector, 1.0
        return (shifted / norm).astype(np.float32), norm

    def _mean(self, embedder: TextEmbedder, language: str) -> np.ndarray:
        return self._array(embedder, f"{language}-mean", REFERENCE_QUERIES[language], queries=True, mean=True)

    def background_level(self, embedder: TextEmbedder, vector: np.ndarray) -> float:
        """How close the query comes to everyday passages about nothing in particular (the mean of
        its 3 best cosines with BACKGROUND_PASSAGES): a scene must stand out from that level to be
        a confident match, whatever the size of the library."""
        background = self._array(embedder, "background", BACKGROUND_PASSAGES, queries=False, mean=False)
        sims = np.sort(background @ vector.astype(np.float32))[::-1]
        return float(sims[:3].mean())

    def _array(
        self, embedder: TextEmbedder, name: str, texts: tuple[str, ...], *, queries: bool, mean: bool
    ) -> np.ndarray:
        key = (embedder.name, name)
        with self._lock:  # one computation per key even when the first searches arrive together
            array = self._arrays.get(key)
            if array is None:
                array = self._arrays[key] = self._cached(embedder, name, texts, queries, mean)
            return array

    def _cached(
        self, embedder: TextEmbedder, name: str, texts: tuple[str, ...], queries: bool, mean: bool
    ) -> np.ndarray:
        digest = hashlib.sha256("\n".join([embedder.name, *texts]).encode()).hexdigest()[:16]
        path = self.cache_dir / "query-means" / f"{name}-{digest}.npy" if self.cache_dir else None
        shape = (embedder.dim,) if mean else (len(texts), embedder.dim)
        if path is not None and path.is_file():
            with suppress(OSError, ValueError):
                cached = np.load(path)
                if cached.shape == shape:
                    return cached.astype(np.float32)
        embed = embedder.embed_queries if queries else embedder.embed_passages
        array = np.asarray(embed(list(texts)), dtype=np.float32)
        if mean:
            array = array.mean(axis=0)
        if path is not None:
            with suppress(OSError):  # a read-only cache only costs the recomputation
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                with open(tmp, "wb") as out:
                    np.save(out, array)
                tmp.replace(path)  # atomic: concurrent processes never read half a file
        return array
