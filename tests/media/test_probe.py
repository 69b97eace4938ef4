"""probe() on real files: Debian-packaged samples of many codecs, and a few ffmpeg-made clips."""

from __future__ import annotations

import pytest

from heimdex.media import probe
from tests.assets import (
    ffmpeg_clip,
    forensics_sample,
    kphotoalbum_photo,
    narrated_video,
    opencv_sample,
    tiny_clip,
)

TESTSRC = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"]


def test_megamind_avi_with_ac3_audio():
    info = probe(opencv_sample("Megamind.avi"))
    assert (info.container, info.video_codec, info.audio_codec) == ("avi", "mpeg4", "ac3")
    assert info.has_audio
    assert (info.width, info.height) == (720, 528)
    assert info.duration_s == pytest.approx(11.26, abs=0.05)
    assert info.fps == pytest.approx(23.976, abs=0.01)
    assert info.rotation == 0
    assert info.size_bytes == opencv_sample("Megamind.avi").stat().st_size


def test_narrated_mp4():
    video = narrated_video(
        "probe-two-scenes",
        [
            {"image": kphotoalbum_photo("donna.jpg"), "say": None, "seconds": 2.0},
            {"image": kphotoalbum_photo("jesper.jpg"), "say": None, "seconds": 1.5},
        ],
    )
    info = probe(video)
    assert (info.container, info.video_codec, info.audio_codec) == ("mp4", "h264", "aac")
    assert (info.width, info.height, info.fps) == (640, 360, 25.0)
    assert info.duration_s == pytest.approx(3.5, abs=0.1)


# Real samples from Debian packages: (package helper, expected video codec, audio codec, size).
DEBIAN_SAMPLES = {
    "cinepak (opencv-doc tree.avi)": (lambda: opencv_sample("tree.avi"), "cinepak", None, (320, 240)),
    "msmpeg4v3 (opencv-doc vtest.avi)": (lambda: opencv_sample("vtest.avi"), "msmpeg4", None, (768, 576)),
    "mjpeg + pcm_u8 (kphotoalbum movie.avi)": (
        lambda: kphotoalbum_photo("movie.avi"),
        "mjpeg",
        "pcm_u8",
        (160, 120),
    ),
    "theora + vorbis (forensics movie-hello.ogg)": (
        lambda: forensics_sample("movie2/movie-hello.ogg"),
        "theora",
        "vorbis",
        (720, 480),
    ),
    "h264 1080p phone clip (forensics)": (
        lambda: forensics_sample("movie1/VID_20191220_170832.mp4"),
        "h264",
        "aac",
        (1920, 1080),
    ),
    "h264 in avi (forensics movie-hello.avi)": (
        lambda: forensics_sample("movie2/movie-hello.avi"),
        "h264",
        "aac",
        (1024, 576),
    ),
}


@pytest.mark.parametrize("sample", DEBIAN_SAMPLES, ids=list(DEBIAN_SAMPLES))
def test_debian_samples_of_odd_codecs(sample):
    make, video_codec, audio_codec, size = DEBIAN_SAMPLES[sample]
    info = probe(make())
    assert info.video_codec == video_codec
    assert info.audio_codec == audio_codec
    assert info.has_audio is (audio_codec is not None)
    assert (info.width, info.height) == size
    assert info.duration_s > 1 and info.fps > 1


# No Debian package we found ships these codecs, so they are encoded here with Debian's ffmpeg.
GENERATED = {
    "vp8.webm": (["-c:v", "libvpx", "-b:v", "300k"], "vp8"),
    "vp9.webm": (["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8"], "vp9"),
    "msmpeg4v2.avi": (["-c:v", "msmpeg4v2"], "msmpeg4v2"),
    "mpeg2.ts": (["-c:v", "mpeg2video"], "mpeg2video"),
    "mjpeg.mov": (["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"], "mjpeg"),
}


@pytest.mark.parametrize("name", GENERATED)
def test_generated_codecs(name):
    args, codec = GENERATED[name]
    info = probe(ffmpeg_clip(name, [*TESTSRC, *args]))
    assert info.video_codec == codec
    assert (info.width, info.height) == (320, 240)
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert info.fps == pytest.approx(25.0, abs=0.01)
    assert not info.has_audio


def test_transport_stream_time_starts_at_zero():
    # MPEG-TS clocks start around 1.4 s; the duration must not include that offset.
    info = probe(ffmpeg_clip("mpeg2.ts", [*TESTSRC, "-c:v", "mpeg2video"]))
    assert info.duration_s < 2.2


def test_rotated_phone_video_reports_display_size():
    base = ffmpeg_clip("testsrc.mp4", [*TESTSRC, "-c:v", "libx264", "-pix_fmt", "yuv420p"])
    rotated = ffmpeg_clip("rotated90.mp4", ["-i", base, "-c", "copy", "-metadata:s:v:0", "rotate=90"])
    info = probe(rotated)
    assert info.rotation == 90
    assert (info.width, info.height) == (240, 320)


def test_tiny_clip_without_audio():
    clip = tiny_clip()
    info = probe(clip)
    assert (info.width, info.height) == (48, 144)
    assert not info.has_audio and info.audio_codec is None


def test_anamorphic_video_reports_display_width():
    clip = ffmpeg_clip(
        "anamorphic.mp4", [*TESTSRC, "-vf", "setsar=2/1", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    )
    info = probe(clip)
    assert (info.width, info.height) == (640, 240)
