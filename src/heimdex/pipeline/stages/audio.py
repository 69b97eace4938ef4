"""audio_extract and asr_fast: the speech branch.

asr_fast runs whole in the embedded runner (ml/asr.py still cuts long audio into one piece per thread).
Server mode fans it out (graph.FanOut): speech_plan cuts the audio at pauses into pieces of about
`asr_piece_s` and settles the language once, each speech_piece message transcribes one piece on any
worker, and speech_join puts the pieces' transcripts together when all are done."""

from __future__ import annotations

import numpy as np

from heimdex.domain import Transcript
from heimdex.media import extract_audio
from heimdex.ml.asr import join_pieces, piece_count
from heimdex.pipeline.artifacts import AUDIO, MEDIA_INFO, SPEECH_PIECES, SPEECH_PLAN, TRANSCRIPT
from heimdex.pipeline.context import StageContext

SAMPLE_RATE = 16_000
MIN_SPEECH_SAMPLES = SAMPLE_RATE // 4  # shorter than this cannot hold a word


def audio_extract(ctx: StageContext) -> None:
    info = ctx.artifacts.load(MEDIA_INFO)
    audio = np.zeros(0, dtype=np.float32)
    if info.has_audio:
        with ctx.original() as path:
            audio = extract_audio(path, sample_rate=SAMPLE_RATE)
    ctx.artifacts.save(AUDIO, audio.astype(np.float32, copy=False))


def _silent(audio: np.ndarray) -> bool:
    return len(audio) < MIN_SPEECH_SAMPLES or not np.any(np.abs(audio) > 1e-4)


def asr_fast(ctx: StageContext) -> None:
    audio = ctx.artifacts.load(AUDIO)
    if _silent(audio):
        transcript = Transcript(model="none: no audio")
    else:
        transcript = ctx.models.asr.transcribe(audio, language=ctx.settings.asr_language)
    ctx.artifacts.save(TRANSCRIPT, transcript)


def speech_plan(ctx: StageContext) -> int:
    """How many pieces asr_fast runs in (1: whole). Made once: a plan saved before is kept, so that a
    message delivered again finds the pieces it sent."""
    if ctx.artifacts.exists(SPEECH_PLAN):
        return ctx.artifacts.load(SPEECH_PLAN).pieces
    audio = ctx.artifacts.load(AUDIO)
    count = 1 if _silent(audio) else piece_count(len(audio), ctx.settings.asr_piece_s)
    if count == 1:  # no model loaded, nothing saved: asr_fast runs as a stage
        return 1
    plan = ctx.models.asr.plan(audio, count, language=ctx.settings.asr_language)
    if plan.pieces > 1:  # no pause near a cut can leave one piece
        ctx.artifacts.save(SPEECH_PLAN, plan)
    return plan.pieces


def speech_piece(ctx: StageContext, piece: int) -> None:
    plan = ctx.artifacts.load(SPEECH_PLAN)
    transcript = ctx.models.asr.transcribe_piece(ctx.artifacts.load(AUDIO), plan, piece)
    ctx.artifacts.save(SPEECH_PIECES.at(piece), transcript)


def speech_join(ctx: StageContext) -> None:
    plan = ctx.artifacts.load(SPEECH_PLAN)
    pieces = [ctx.artifacts.load(SPEECH_PIECES.at(k)) for k in range(plan.pieces)]
    ctx.artifacts.save(TRANSCRIPT, join_pieces(plan, pieces))
