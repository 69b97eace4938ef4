"""Find out what a file is, and refuse it with a user-facing reason if it is not a usable video.

Everything here goes through PyAV (which bundles its own FFmpeg). The helpers `open_container`,
`video_stream`, `frame_rotation` and `time_origin` are shared by the rest of the media package so that
every module opens files, picks streams and measures time the same way.

Conventions used by the whole package:
* Times are seconds from the start of the file (the container's start time is subtracted), so a
  transport stream whose clock starts at 1.4 s still has its first frame at 0.
* `rotation` is FFmpeg's display-matrix angle: the decoded picture must be turned this many degrees
  counter-clockwise to be shown upright (0, 90, 180 or 270). Width and height are the display size,
  after rotation and after applying the sample aspect ratio of anamorphic video.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.frame
import av.logging
import av.stream
import av.video.frame
import av.video.stream

from heimdex.domain import MediaInfo
from heimdex.errors import InvalidMediaError

# Decoding the first picture proves the codec works; a broken file shows itself within a few hundred
# packets (some codecs need several packets, e.g. open-GOP streams that start mid-GOP).
_FIRST_FRAME_PACKETS = 400
# Frame rates outside this range are header garbage (e.g. a 90 kHz timebase reported as the rate).
_SANE_FPS = (0.5, 300.0)

# Decoders where skipping non-reference frames (most B-frames) is safe and pays. Theora (vp3), for
# one, rejects packets outright when asked to skip, so this is an allow-list.
SKIP_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video", "vc1", "wmv3"})

_FFMPEG_ERRORS: tuple[type[BaseException], ...] = (av.FFmpegError, OSError, ValueError, UnicodeDecodeError)

# Pictures (photos, video frames) larger than this are refused before they are decoded: a 436 KB PNG
# can declare 12000x12000 pixels, and decoding that takes seconds and gigabytes. 8K video is 33 MP.
DEFAULT_MAX_PIXELS = 50_000_000


def check_pixels(width: int, height: int, max_pixels: int | None, what: str) -> None:
    """InvalidMediaError if a picture of `width` x `height` is past the limit (None: no limit)."""
    if max_pixels is not None and width * height > max_pixels:
        raise InvalidMediaError(
            f"{what} is {width}x{height} pixels ({width * height / 1e6:.3g} MP); "
            f"the limit is {max_pixels / 1e6:g} MP"
        )


def probe(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> MediaInfo:
    """Describe a video file, or raise InvalidMediaError saying why it cannot be indexed.

    A frame size past `max_pixels` is refused before any such frame is decoded: FFmpeg's decoders are
    capped too (opening a file decodes a frame when the headers leave something out)."""
    path = Path(path)
    size = _check_file(path)
    what = f"{path.name}: the video's picture"
    with open_container(path, max_pixels=max_pixels) as container:
        _refuse_still_image(container)
        stream = video_stream(container)
        declared = (stream.codec_context.width or 0, stream.codec_context.height or 0)
        check_pixels(*declared, max_pixels, what)
        if max_pixels is not None:
            stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(max_pixels)}
        try:
            first = _first_frame(container, stream)
        except (InvalidMediaError, *_FFMPEG_ERRORS):
            refused = _refused_size(path, max_pixels) if max_pixels is not None and 0 in declared else None
            if refused:
                check_pixels(*refused, max_pixels, what)
            raise
        check_pixels(first.width, first.height, max_pixels, what)
        duration = _duration(container, stream)
        width, height = display_size(first, stream)
        audio = _audio_stream(container)
        return MediaInfo(
            container=_container_name(container, path),
            duration_s=round(duration, 3),
            width=width,
            height=height,
            fps=round(_fps(stream, duration), 3),
            video_codec=stream.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            has_audio=audio is not None,
            rotation=frame_rotation(first),
            size_bytes=size,
        )


# ---------------------------------------------------------------- shared helpers


@contextlib.contextmanager
def open_container(path: Path, max_pixels: int | None = None) -> Iterator[av.container.InputContainer]:
    """Open a file for reading; FFmpeg's errors become InvalidMediaError with a plain reason.

    Errors raised *inside* the with-block are translated too, so callers never see a raw av error.
    `max_pixels` caps the pictures FFmpeg decodes while it opens the file (to learn what the headers
    leave out); a stream whose pictures are larger then has an unknown (0x0) size.
    """
    options = {"max_pixels": str(max_pixels)} if max_pixels is not None else None
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore", options=options)
    except FileNotFoundError as exc:
        raise InvalidMediaError(f"File not found: {path.name}") from exc
    except av.InvalidDataError as exc:
        raise InvalidMediaError(_unreadable_reason(path)) from exc
    except _FFMPEG_ERRORS as exc:
        raise InvalidMediaError(f"Cannot read {path.name}: {_reason(exc)}") from exc
    try:
        yield container
    except InvalidMediaError:
        raise
    except _FFMPEG_ERRORS as exc:
        raise InvalidMediaError(f"Cannot decode {path.name}: {_reason(exc)}") from exc
    finally:
        container.close()


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The main video stream: the biggest picture that is not cover art and that we can decode."""
    candidates = [
        s
        for s in container.streams.video
        if not s.disposition & av.stream.Disposition.attached_pic and s.codec_context is not None
    ]
    if not candidates:
        kinds = "audio only" if container.streams.audio else "no video stream"
        raise InvalidMediaError(f"{Path(container.name).name} has no video ({kinds})")
    return max(candidates, key=lambda s: (s.codec_context.width or 0) * (s.codec_context.height or 0))


def decoded_frames(
    container: av.container.InputContainer,
    stream: av.stream.Stream,
    packets: Iterable[av.Packet] | None = None,
) -> Iterator[av.frame.Frame]:
    """Every frame of one stream, in presentation order, tolerating damaged packets.

    Zero-byte packets are skipped: Ogg uses them mid-stream for "repeat the previous frame", and
    PyAV would hand them to the decoder as an end-of-stream flush, after which it refuses all
    further packets. The decoder is drained explicitly at the real end instead.
    """
    for packet in container.demux(stream) if packets is None else packets:
        if not packet.size:
            continue
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue  # a damaged packet costs a frame or two, not the whole file
    try:
        yield from stream.decode(None)
    except (av.InvalidDataError, av.EOFError):
        return


def time_origin(container: av.container.InputContainer) -> float:
    """Seconds to subtract from stream times so the file starts at 0."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def frame_rotation(frame: av.video.frame.VideoFrame) -> int:
    """Counter-clockwise display rotation from the frame's display matrix, snapped to 0/90/180/270."""
    try:
        angle = float(frame.rotation or 0)
    except (ValueError, TypeError, av.FFmpegError):
        return 0
    if not math.isfinite(angle):
        return 0
    return round(angle / 90.0) % 4 * 90


def display_size(frame: av.video.frame.VideoFrame, stream: av.video.stream.VideoStream) -> tuple[int, int]:
    """Width and height as a viewer shows them: sample aspect ratio applied, then rotation."""
    width, height = frame.width, frame.height
    sar = _sample_aspect(stream)
    if sar != 1:
        width = max(1, round(width * sar))
    if frame_rotation(frame) in (90, 270):
        width, height = height, width
    return width, height


def _sample_aspect(stream: av.video.stream.VideoStream) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    # 0/1 means unknown; absurd values come from broken headers and would distort every frame.
    if not sar or not 0.25 <= sar <= 4:
        return Fraction(1)
    return Fraction(sar.numerator, sar.denominator)


# ---------------------------------------------------------------- probe internals

_PAST_LIMIT = re.compile(r"Picture size (\d+)x(\d+) exceeds specified max pixel count")


def _refused_size(path: Path, max_pixels: int) -> tuple[int, int] | None:
    """The picture size FFmpeg refused to decode for being past `max_pixels`, or None.

    Only FFmpeg's log says it (the refused size is dropped from the stream), so the file is opened
    once more, capped as before, with this thread's FFmpeg log captured. Only a failed probe pays."""
    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # the same words as the last refusal must still be seen
    try:
        with av.logging.Capture() as logs, contextlib.suppress(*_FFMPEG_ERRORS):
            options = {"max_pixels": str(max_pixels)}
            av.open(str(path), mode="r", metadata_errors="ignore", options=options).close()
    finally:
        av.logging.set_skip_repeated(skip)
        av.logging.set_level(level)
    for _, _, message in logs:
        found = _PAST_LIMIT.search(message)
        if found:
            return int(found[1]), int(found[2])
    return None


def _check_file(path: Path) -> int:
    if not path.exists():
        raise InvalidMediaError(f"File not found: {path.name}")
    if not path.is_file():
        raise InvalidMediaError(f"{path.name} is not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise InvalidMediaError(f"{path.name} is empty (0 bytes)")
    return size


def _refuse_still_image(container: av.container.InputContainer) -> None:
    """FFmpeg happily opens a JPEG or PNG as a one-frame "video"; for an upload that is a mistake."""
    fmt = container.format.name
    if fmt.endswith("_pipe") or fmt in ("image2", "image2pipe"):
        raise InvalidMediaError(f"{Path(container.name).name} is a still image, not a video")


def _first_frame(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> av.video.frame.VideoFrame:
    """Decode the first picture: headers can look fine while the payload is missing or garbage."""
    packets = 0

    def counted() -> Iterator[av.Packet]:
        nonlocal packets
        for packet in container.demux(stream):
            packets += 1
            if packets > _FIRST_FRAME_PACKETS:
                return
            yield packet

    for frame in decoded_frames(container, stream, counted()):
        return frame
    reason = "no picture could be decoded" if packets else "it contains no video data"
    raise InvalidMediaError(f"{Path(container.name).name}: the video stream cannot be decoded ({reason})")


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """Length in seconds. Headers first, then frame count, then (last resort) a demux-only pass.

    The pass reads packets without decoding them, which costs about one disk read of the file; it is
    only needed for raw or broken-header streams that do not state their length.
    """
    name = Path(container.name).name
    duration = _header_duration(container, stream)
    if duration is None:
        duration = _demuxed_duration(container, stream)
    if duration is None or duration <= 0:
        raise InvalidMediaError(f"{name}: the video has no length (zero or unknown duration)")
    _check_not_truncated(container, stream, duration)
    return duration


def _header_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    rate = stream.average_rate or stream.guessed_rate
    if stream.frames and rate:
        return stream.frames / float(rate)
    return None


def _demuxed_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    try:
        container.seek(0)
    except _FFMPEG_ERRORS:
        return None
    origin, end = time_origin(container), None
    for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
            continue
        t = float((packet.pts + (packet.duration or 0)) * packet.time_base)
        end = t if end is None else max(end, t)
    return end - origin if end is not None else None


def _check_not_truncated(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, duration: float
) -> None:
    """A file cut short can keep a header that promises the full length (e.g. MP4 with the index
    first). Seek near the promised end: if no packet is there, the tail of the file is missing."""
    if duration < 2 or stream.time_base is None:
        return
    target = time_origin(container) + duration * 0.9
    try:
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        packet = next((p for p in container.demux(stream) if p.size), None)
    except av.InvalidDataError:
        packet = None
    except _FFMPEG_ERRORS:
        return  # not seekable: nothing to conclude
    if packet is None:
        raise InvalidMediaError(f"{Path(container.name).name} is incomplete: the end of the video is missing")


def _audio_stream(container: av.container.InputContainer) -> av.stream.Stream | None:
    """The first audio stream we can decode (one with an unknown codec is as good as none)."""
    for stream in container.streams.audio:
        if stream.codec_context is not None and stream.codec_context.sample_rate:
            return stream
    return None


def _fps(stream: av.video.stream.VideoStream, duration: float) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and _SANE_FPS[0] <= float(rate) <= _SANE_FPS[1]:
            return float(rate)
    if stream.frames and duration > 0:
        return stream.frames / duration
    return 0.0


def _container_name(container: av.container.InputContainer, path: Path) -> str:
    """A short name: the file's extension when the format accepts it ("mp4", not "mov,mp4,m4a,...")."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix in (container.format.extensions or ()):
        return suffix
    return container.format.name.split(",")[0]


# Leading bytes of containers FFmpeg knows; if it still cannot open such a file, the file is broken
# (typically an MP4 cut short before its index), which is a different message from "not a video".
_SIGNATURES = (
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "AVI"),
    (0, b"OggS", "Ogg"),
)


def _unreadable_reason(path: Path) -> str:
    try:
        with path.open("rb") as file:
            head = file.read(12)
    except OSError:
        head = b""
    for offset, magic, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return f"{path.name} is an incomplete or damaged {kind} file (was the upload cut short?)"
    return f"{path.name} is not a video file (unknown format)"


def _reason(exc: BaseException) -> str:
    """FFmpeg's own wording without the errno/filename decoration PyAV adds."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).rstrip(".")
