"""extract_audio() on real soundtracks: AC3, AAC, Vorbis, 8-bit PCM, and files without audio."""

from __future__ import annotations

import numpy as np
import pytest

from heimdex.media import extract_audio, probe
from tests.assets import ffmpeg_clip, forensics_sample, kphotoalbum_photo, narrated_video, opencv_sample


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def test_megamind_dialogue_is_mono_float32_at_16k():
    path = opencv_sample("Megamind.avi")
    audio = extract_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) / 16000 == pytest.approx(probe(path).duration_s, abs=0.3)
    assert audio.min() >= -1.0 and audio.max() <= 1.0
    assert _rms(audio) > 0.01  # there is dialogue and music, not silence


def test_sample_rate_is_honoured():
    path = opencv_sample("Megamind.avi")
    assert len(extract_audio(path, sample_rate=8000)) == pytest.approx(len(extract_audio(path)) / 2, rel=0.01)


@pytest.mark.parametrize(
    "path",
    [
        lambda: kphotoalbum_photo("movie.avi"),  # 8-bit PCM
        lambda: forensics_sample("movie2/movie-hello.ogg"),  # Vorbis next to Theora
        lambda: forensics_sample("movie1/VID_20191220_170832.mp4"),  # AAC from a phone
    ],
    ids=["pcm_u8", "vorbis", "aac-phone"],
)
def test_other_audio_codecs(path):
    file = path()
    audio = extract_audio(file)
    assert len(audio) / 16000 == pytest.approx(probe(file).duration_s, abs=0.3)
    assert _rms(audio) > 0.001


def test_speech_lands_where_it_was_spoken():
    video = narrated_video(
        "audio-silence-then-speech",
        [
            {"image": kphotoalbum_photo("donna.jpg"), "say": None, "seconds": 2.0},
            {"image": kphotoalbum_photo("jesper.jpg"), "say": "The harbour was rebuilt after the storm."},
        ],
    )
    audio = extract_audio(video)
    assert _rms(audio[: 16000 * 19 // 10]) < 0.002  # the first scene is silent
    assert _rms(audio[16000 * 2 : 16000 * 4]) > 0.02  # the second is narrated


def test_late_starting_audio_is_padded_to_keep_time():
    # Audio that starts 1 s after the video: sample 0 must still be time 0.
    clip = ffmpeg_clip(
        "late-audio.mkv",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000",
            "-filter_complex",
            "[1:a]atrim=0:2,asetpts=PTS-STARTPTS+1/TB[a]",
            "-map",
            "0:v",
            "-map",
            "[a]",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libvorbis",
        ],
    )
    audio = extract_audio(clip)
    assert _rms(audio[: 16000 * 9 // 10]) < 0.01
    assert _rms(audio[16000 * 11 // 10 : 16000 * 2]) > 0.05  # ffmpeg's sine peaks at 1/8


def test_video_without_audio_gives_empty_array():
    audio = extract_audio(opencv_sample("vtest.avi"))
    assert audio.dtype == np.float32 and audio.shape == (0,)
