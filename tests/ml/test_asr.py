"""Whisper on real synthetic speech (the neural piper voice; espeak-ng for Korean): words, language,
timestamps, empty input, model resolution."""

from __future__ import annotations

import re

import numpy as np
import pytest

from heimdex.domain import SpeechPlan, Transcript
from heimdex.errors import ModelUnavailableError
from heimdex.ml.asr import WhisperRecognizer, join_pieces, piece_count, resolve_model, split_points
from heimdex.ml.base import SpeechRecognizer
from tests import assets
from tests.ml.conftest import SAMPLE_RATE, load_audio

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture(scope="module")
def whisper(models) -> WhisperRecognizer:
    return models.asr


@pytest.fixture(scope="module")
def english() -> np.ndarray:
    return load_audio(assets.speech_wav(SENTENCE, "asr_fox"))


@pytest.fixture(scope="module")
def english_transcript(whisper, english) -> Transcript:
    return whisper.transcribe(english)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_is_a_speech_recognizer(whisper) -> None:
    assert isinstance(whisper, SpeechRecognizer)
    assert whisper.name == "whisper-base-int8"


def test_english_sentence(english_transcript) -> None:
    transcript = english_transcript
    text = " ".join(s.text for s in transcript.segments)
    assert transcript.language == "en" and transcript.language_probability > 0.5
    assert transcript.model == "whisper-base-int8"
    assert {"quick", "fox", "lazy", "dog"} <= _words(text), text
    assert "river" in text.lower()  # "river bank" or "riverbank"
    assert all(s.text == s.text.strip() and s.text for s in transcript.segments)


def test_word_timestamps_increase_inside_the_audio(english_transcript, english) -> None:
    duration = len(english) / SAMPLE_RATE
    words = [w for s in english_transcript.segments for w in s.words]
    assert len(words) >= 8
    starts = [w.start_s for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start_s <= w.end_s <= duration + 0.05 for w in words)
    assert all(0 <= w.probability <= 1 for w in words)


def test_given_language_is_used(whisper, english) -> None:
    assert whisper.transcribe(english, language="en").language == "en"


KOREAN_ONE_TO_FIVE = ["하나", "둘", "셋", "넷", "다섯"]


def test_korean_speech(whisper) -> None:
    # espeak-ng's Korean voice ("ko": there is no Korean piper voice here) is rough: detection alone
    # calls it Thai, so the language is given, and Whisper base mishears its whole sentences. Counting
    # (short, common words) it hears: most of the numbers must come back as said, in order.
    audio = load_audio(assets.speech_wav("하나, 둘, 셋, 넷, 다섯.", "asr_ko_count", voice="ko"))
    transcript = whisper.transcribe(audio, language="ko")
    text = "".join(s.text for s in transcript.segments)
    assert transcript.language == "ko"
    heard = [word for word in re.findall("[가-힣]+", text) if word in KOREAN_ONE_TO_FIVE]
    assert len(set(heard)) >= 3, text
    assert heard == sorted(heard, key=KOREAN_ONE_TO_FIVE.index), text


@pytest.mark.parametrize(
    "audio",
    [np.zeros(0, np.float32), np.zeros(SAMPLE_RATE * 3, np.float32), np.zeros(100, np.float32)],
    ids=["empty", "silence", "tiny"],
)
def test_no_speech_gives_an_empty_transcript(whisper, audio) -> None:
    transcript = whisper.transcribe(audio)
    assert transcript.segments == [] and transcript.model == whisper.name


@pytest.mark.parametrize("seconds", [3, 45], ids=["short", "long-enough-to-split"])
def test_low_noise_gives_no_words(whisper, seconds) -> None:
    noise = (np.random.default_rng(0).standard_normal(SAMPLE_RATE * seconds) * 0.003).astype(np.float32)
    transcript = whisper.transcribe(noise)
    assert transcript.segments == [] and transcript.language is None


def test_tiny_en_package(model_settings, english) -> None:
    tiny = WhisperRecognizer("tiny.en", cache_dir=model_settings.model_cache_dir, threads=2)
    transcript = tiny.transcribe(english, language="ko")  # ignored: the model only knows English
    assert tiny.name == "whisper-tiny.en-int8" and transcript.language == "en"
    assert {"quick", "dog"} <= _words(" ".join(s.text for s in transcript.segments))  # tiny mishears more


def test_base_is_joined_once_with_the_right_size(model_settings) -> None:
    cache = model_settings.model_cache_dir
    folder, name = resolve_model("base", cache)
    model_bin = cache / "whisper-base" / "model.bin"
    before = model_bin.stat().st_mtime_ns
    assert resolve_model("base", cache) == (folder, name) and name == "whisper-base"
    assert model_bin.stat().st_mtime_ns == before  # not joined again
    assert model_bin.stat().st_size == 145_217_532
    assert {p.name for p in (cache / "whisper-base").iterdir()} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }


def test_a_truncated_join_is_redone(tmp_path) -> None:
    folder = tmp_path / "whisper-base"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"half a model")
    source, _ = resolve_model("base", tmp_path)
    assert (folder / "model.bin").stat().st_size == 145_217_532 and source == str(folder)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".whisper-base-")]  # no temp left


def test_a_local_folder_is_used_as_is(model_settings) -> None:
    packaged = resolve_model("tiny.en", model_settings.model_cache_dir)[0]
    assert resolve_model(packaged, model_settings.model_cache_dir) == (packaged, "whisper-model")


def test_missing_folder_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match=r"model\.bin"):
        WhisperRecognizer(str(tmp_path), cache_dir=tmp_path, threads=1)


def test_hub_id_offline_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelUnavailableError, match="hub ids need internet"):
        WhisperRecognizer("Systran/faster-whisper-small", cache_dir=tmp_path, threads=1)


# assets.STORY's ten sentences narrated one after another with short pauses: about 45 s, so the
# recognizer (2 threads here) cuts the audio in two and transcribes the halves side by side.
STORY = assets.STORY[:10]


@pytest.fixture(scope="module")
def story() -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """The narration, and where each sentence lies in it (keyword, start s, end s)."""
    pause = np.zeros(SAMPLE_RATE, np.float32)  # 1 s keeps the story well over 40 s (2 x 20 s pieces)
    parts, spans, at = [], [], 0
    for i, (keyword, sentence) in enumerate(STORY):
        speech = load_audio(assets.speech_wav(sentence, f"asr_story_{i}"))
        parts += [speech, pause]
        spans.append((keyword, at / SAMPLE_RATE, (at + speech.size) / SAMPLE_RATE))
        at += speech.size + pause.size
    return np.concatenate(parts), spans


def test_long_audio_is_cut_in_a_pause(story) -> None:
    audio, _ = story
    starts = split_points(audio, 2)
    assert len(starts) == 2 and starts[0] == 0
    cut = starts[1]
    assert abs(cut - audio.size / 2) < audio.size / 4
    around = audio[cut - SAMPLE_RATE // 20 : cut + SAMPLE_RATE // 20]
    assert float(np.abs(around).max()) < 0.01, "the cut falls inside speech"
    assert split_points(audio, 1) == [0] and split_points(audio[: SAMPLE_RATE * 30], 2) == [0]


def test_pieces_join_into_one_transcript_on_the_whole_clock(whisper, story) -> None:
    audio, spans = story
    transcript = whisper.transcribe(audio)
    assert transcript.language == "en"
    _keywords_once(transcript, spans)


def _keywords_once(transcript: Transcript, spans: list[tuple[str, float, float]]) -> None:
    words = [w for s in transcript.segments for w in s.words]
    assert [w.start_s for w in words] == sorted(w.start_s for w in words)
    for keyword, start_s, end_s in spans:
        found = [w for w in words if re.sub(r"[^a-z]", "", w.text.lower()) == keyword]
        assert len(found) == 1, f"{keyword!r} heard {len(found)} times"  # none lost or doubled at a cut
        assert start_s - 0.3 <= found[0].start_s <= end_s, (keyword, found[0], start_s, end_s)


def test_a_plan_transcribed_piece_by_piece_joins_on_the_whole_clock(whisper, story) -> None:
    """Server mode's fan-out: a plan, each piece alone (as on another worker), then the join."""
    audio, spans = story
    plan = whisper.plan(audio, 3)  # 44 s: two pieces, none shorter than 20 s
    assert plan.pieces == 2 and plan.starts[0] == 0 and plan.samples == audio.size
    assert plan.language == "en" and not plan.forced, "detected once, for every piece"
    assert [plan.bounds(k)[1] for k in range(2)] == [plan.starts[1], audio.size]
    pieces = [whisper.transcribe_piece(audio, plan, k) for k in (1, 0)][::-1]  # any order, any worker
    for k, piece in enumerate(pieces):  # each on the whole clock, inside its own slice
        start, end = (b / SAMPLE_RATE for b in plan.bounds(k))
        assert all(start - 0.05 <= w.start_s <= end + 0.05 for s in piece.segments for w in s.words)
        assert piece.language == "en"
    joined = join_pieces(plan, pieces)
    assert joined.language == "en" and joined.model == whisper.name
    _keywords_once(joined, spans)


def test_piece_count_keeps_short_audio_whole() -> None:
    minute = 60 * SAMPLE_RATE
    assert piece_count(0, 180) == 1
    assert piece_count(4 * minute, 180) == 1, "shorter than 1.5 pieces: one message"
    assert piece_count(5 * minute, 180) == 2
    assert piece_count(11 * minute, 180) == 4
    assert piece_count(75 * SAMPLE_RATE, 20) == 4


def test_join_of_silent_pieces_claims_no_language() -> None:
    plan = SpeechPlan(starts=[0, 100], samples=200, language="en", language_probability=0.9)
    silent = [Transcript(language="en", model="m"), Transcript(language="en", model="m")]
    assert join_pieces(plan, silent) == Transcript(model="m"), "a language detected in noise means nothing"
    asked = plan.model_copy(update={"forced": True})
    assert join_pieces(asked, silent).language == "en"


def test_speech_left_after_the_last_word_is_decoded_again(whisper, story) -> None:
    """Whisper, decoding a piece's VAD-joined speech, sometimes stops before its last sentence. The
    tail after the last word recognised is decoded alone when VAD hears speech in it: here the
    decoding is made to "lose" the last two sentences (the segments before them are passed as all
    there was), and their words come back on the piece's clock."""
    audio, spans = story
    cut = int(spans[-3][2] * SAMPLE_RATE) + SAMPLE_RATE // 2  # the 8th sentence ends before the cut
    segments, _ = whisper._transcribe_piece(audio[:cut], "en")
    recovered = whisper._lost_tail(audio, segments, "en")
    words = [w for s in recovered for w in s.words]
    for keyword, start_s, end_s in spans[-2:]:
        found = [w for w in words if re.sub(r"[^a-z]", "", w.text.lower()) == keyword]
        assert len(found) == 1 and start_s - 0.3 <= found[0].start_s <= end_s, (keyword, found)
    assert whisper._lost_tail(audio[:cut], segments, "en") == [], "nothing after the last word"
