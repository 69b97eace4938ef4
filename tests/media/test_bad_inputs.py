"""Files a user might upload by mistake: each must give InvalidMediaError with a useful message,
from every entry point, never a raw PyAV/FFmpeg exception."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from heimdex.errors import InvalidMediaError
from heimdex.media import decode_frames, detect_cuts, extract_audio, probe
from tests.assets import ffmpeg_clip, forensics_sample, narrated_video, opencv_sample, skimage_photo

ENTRY_POINTS = {
    "probe": probe,
    "extract_audio": extract_audio,
    "decode_frames": lambda p: decode_frames(p, [0.0, 1.0], max_side=256),
    "detect_cuts": detect_cuts,
}


def _truncated(tmp_path, source, name):
    data = source.read_bytes()
    out = tmp_path / name
    out.write_bytes(data[: len(data) * 3 // 10])
    return out


def _audio_only_m4a():
    return ffmpeg_clip("tone.m4a", ["-f", "lavfi", "-i", "sine=frequency=300:duration=2", "-c:a", "aac"])


def _mp3_with_cover_art():
    # Cover art is a "video stream" to FFmpeg (an attached picture); it must not pass for a video.
    return ffmpeg_clip(
        "cover-art.mp3",
        [
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=2",
            "-i",
            skimage_photo("astronaut"),
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:a",
            "libmp3lame",
            "-c:v",
            "png",
            "-disposition:v",
            "attached_pic",
        ],
    )


def _short_video():
    return narrated_video(
        "bad-inputs-source", [{"image": skimage_photo("coffee"), "say": "Hello there.", "seconds": 2.0}]
    )


BAD = {
    "empty file": (lambda tmp: _write(tmp / "empty.mp4", b""), "empty"),
    "text renamed .mp4": (
        lambda tmp: _write(tmp / "notes.mp4", b"Meeting notes\n" * 200),
        "not a video file",
    ),
    "random bytes .mkv": (
        lambda tmp: _write(tmp / "noise.mkv", np.random.default_rng(1).bytes(50_000)),
        "not a video file",
    ),
    # ffmpeg writes the index last: cut short, the MP4 cannot even be opened.
    "truncated mp4 (30 %)": (lambda tmp: _truncated(tmp, _short_video(), "cut.mp4"), "incomplete"),
    # Index first ("faststart"): opens fine, but the frames it promises are missing.
    "truncated phone mp4 (30 %)": (
        lambda tmp: _truncated(tmp, forensics_sample("movie2/movie-hello.mp4"), "cut-phone.mp4"),
        "incomplete",
    ),
    "audio-only m4a": (lambda tmp: _audio_only_m4a(), "audio only"),
    "audio-only ogg (Debian sample)": (lambda tmp: forensics_sample("audio1/debian.ogg"), "audio only"),
    "mp3 with cover art": (lambda tmp: _mp3_with_cover_art(), "audio only"),
    "jpeg renamed .mp4": (lambda tmp: _copy(opencv_sample("messi5.jpg"), tmp / "photo.mp4"), "still image"),
    "missing file": (lambda tmp: tmp / "nope.mp4", "not found"),
}


def _write(path, data):
    path.write_bytes(data)
    return path


def _copy(source, path):
    shutil.copyfile(source, path)
    return path


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_probe_explains_what_is_wrong(case, tmp_path):
    make, message = BAD[case]
    path = make(tmp_path)
    with pytest.raises(InvalidMediaError, match=message) as error:
        probe(path)
    assert path.name in str(error.value)  # the user can tell which upload failed


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", ["text renamed .mp4", "random bytes .mkv", "missing file", "empty file"])
def test_every_entry_point_raises_invalid_media(entry, case, tmp_path):
    path = BAD[case][0](tmp_path)
    with pytest.raises(InvalidMediaError):
        ENTRY_POINTS[entry](path)


@pytest.mark.parametrize("entry", ["decode_frames", "detect_cuts"])
def test_audio_only_files_have_no_frames(entry):
    with pytest.raises(InvalidMediaError, match="audio only"):
        ENTRY_POINTS[entry](_audio_only_m4a())


def test_a_directory_is_not_a_video(tmp_path):
    with pytest.raises(InvalidMediaError, match="not a regular file"):
        probe(tmp_path)


def test_audio_of_an_audio_only_file_still_extracts():
    # extract_audio does not insist on video: upload_validate (probe) is where that is refused.
    assert extract_audio(_audio_only_m4a()).size == pytest.approx(32000, abs=2000)


def test_video_without_audio_is_fine():
    info = probe(opencv_sample("tree.avi"))
    assert not info.has_audio
    assert extract_audio(opencv_sample("tree.avi")).size == 0
