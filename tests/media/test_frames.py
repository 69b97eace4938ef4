"""decode_frames() against ffmpeg's own output, plus the still-image helpers."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from heimdex.errors import InvalidMediaError
from heimdex.media import decode_frames, decode_image, encode_jpeg, encode_webp, sharpness
from heimdex.media.frames import SEEK_AHEAD_S
from tests.assets import ffmpeg_clip, forensics_sample, kphotoalbum_photo, opencv_sample, tiny_clip

TESTSRC = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"]


def ffmpeg_frame(path: Path, t: float, width: int, height: int) -> np.ndarray:
    """The frame ffmpeg itself shows at `t` (auto-rotated), scaled to width x height, as RGB."""
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{t}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            f"scale={width}:{height}:flags=area",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def test_frames_match_ffmpeg_including_seeks():
    # vtest.avi (msmpeg4, 79 s, 10 fps): the gaps between wanted times force forward seeks.
    path = opencv_sample("vtest.avi")
    times = [1.0, 1.5, 30.0, 60.0]
    assert times[2] - times[1] > SEEK_AHEAD_S
    frames = decode_frames(path, times, max_side=384)
    assert [t for t, _ in frames] == times
    for t, image in frames:
        assert image.shape == (288, 384, 3) and image.dtype == np.uint8
        assert diff(image, ffmpeg_frame(path, t, 384, 288)) < 4, t
    # Different moments of the street scene really are different pictures.
    assert diff(frames[0][1], frames[3][1]) > 5


def test_h264_with_b_frames_matches_ffmpeg():
    path = forensics_sample("movie2/movie-hello.mp4")
    frames = decode_frames(path, [0.5, 4.0, 8.0], max_side=320, exact=True)
    assert [f.shape for _, f in frames] == [(180, 320, 3)] * 3
    for t, image in frames:
        assert diff(image, ffmpeg_frame(path, t, 320, 180)) < 4, t
    # The default skips B-frames: a neighbouring reference frame, still nearly the same picture.
    fast = decode_frames(path, [0.5, 4.0, 8.0], max_side=320)
    for (t, image), (_, exact) in zip(fast, frames, strict=True):
        assert diff(image, exact) < 8, t


def test_rotation_is_applied_like_a_player_would():
    base = ffmpeg_clip("testsrc.mp4", [*TESTSRC, "-c:v", "libx264", "-pix_fmt", "yuv420p"])
    rotated = ffmpeg_clip("rotated90.mp4", ["-i", base, "-c", "copy", "-metadata:s:v:0", "rotate=90"])
    [(_, image)] = decode_frames(rotated, [1.0], max_side=320)
    assert image.shape == (320, 240, 3)
    assert diff(image, ffmpeg_frame(rotated, 1.0, 240, 320)) < 4


def test_never_upscales_and_keeps_tiny_sizes():
    clip = tiny_clip()
    [(_, image)] = decode_frames(clip, [0.5], max_side=640)
    assert image.shape == (144, 48, 3)


def test_times_are_sorted_deduplicated_and_clipped_to_the_video():
    path = kphotoalbum_photo("movie.avi")  # mjpeg, 4.5 s
    frames = decode_frames(path, [3.0, 1.0, 1.0, 4.9, 60.0], max_side=160)
    assert [t for t, _ in frames] == [1.0, 3.0, 4.9]  # 60 s is past the end: dropped
    assert decode_frames(path, [], max_side=160) == []


def test_theora_with_empty_packets_decodes_to_the_end():
    # Ogg Theora uses zero-byte packets for repeated frames; they must not end decoding early.
    path = forensics_sample("movie2/movie-hello.ogg")
    frames = decode_frames(path, [1.0, 7.5], max_side=320)
    assert [t for t, _ in frames] == [1.0, 7.5]


# ---------------------------------------------------------------- still images


def test_sharpness_prefers_the_sharp_photo():
    image = decode_image(opencv_sample("messi5.jpg"))
    blurred = cv2.GaussianBlur(image, (9, 9), 3)
    assert sharpness(image) > 3 * sharpness(blurred)
    assert sharpness(np.full((64, 64, 3), 128, np.uint8)) == 0.0


def test_jpeg_and_webp_round_trip():
    image = decode_image(kphotoalbum_photo("donna.jpg"))
    again = decode_image(encode_jpeg(image, quality=90))
    assert again.shape == image.shape and diff(again, image) < 4
    webp = encode_webp(image, max_side=200)
    small = decode_image(webp)
    assert max(small.shape[:2]) == 200
    assert webp[8:12] == b"WEBP"


def test_decode_image_honours_exif_orientation():
    photo = Image.open(opencv_sample("messi5.jpg"))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as phones write it
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", exif=exif.tobytes())
    image = decode_image(buffer.getvalue())
    assert image.shape == (photo.width, photo.height, 3)


def test_decode_image_refuses_non_images(tmp_path):
    with pytest.raises(InvalidMediaError, match="not a supported image"):
        decode_image(b"hello, this is text")
    with pytest.raises(InvalidMediaError, match="not a supported image"):
        decode_image(opencv_sample("Megamind.avi"))
    with pytest.raises(InvalidMediaError, match="not found"):
        decode_image(tmp_path / "missing.jpg")
