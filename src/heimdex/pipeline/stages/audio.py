"""audio_extract and asr_fast: the speech branch."""

from __future__ import annotations

import numpy as np

from heimdex.domain import Transcript
from heimdex.media import extract_audio
from heimdex.pipeline.artifacts import AUDIO, MEDIA_INFO, TRANSCRIPT
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


def asr_fast(ctx: StageContext) -> None:
    audio = ctx.artifacts.load(AUDIO)
    if len(audio) < MIN_SPEECH_SAMPLES or not np.any(np.abs(audio) > 1e-4):
        transcript = Transcript(model="none: no audio")
    else:
        transcript = ctx.models.asr.transcribe(audio, language=ctx.settings.asr_language)
    ctx.artifacts.save(TRANSCRIPT, transcript)
