"""Still frames: pick pictures out of a video, judge their sharpness, encode and decode images."""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import av
import av.container
import av.video.frame
import av.video.stream
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageOps, UnidentifiedImageError

from heimdex.domain import Box
from heimdex.errors import InvalidMediaError
from heimdex.media.probe import (
    DEFAULT_MAX_PIXELS,
    SKIP_NONREF_CODECS,
    check_pixels,
    decoded_frames,
    display_size,
    frame_rotation,
    open_container,
    time_origin,
    video_stream,
)

# Seek instead of decoding through when the next wanted time is this far ahead: decoding 5 s of
# 720p H.264 costs about as much as seeking to a keyframe and decoding up to the target.
SEEK_AHEAD_S = 5.0
# Wanted times past the last frame by more than this are dropped instead of getting the last frame.
_END_SLACK_S = 1.0

Image.MAX_IMAGE_PIXELS = 120_000_000  # refuse decompression bombs, allow 100 MP camera photos


def decode_frames(
    path: Path, times: Sequence[float], max_side: int, *, exact: bool = False
) -> list[tuple[float, np.ndarray]]:
    """RGB uint8 frames nearest to each wanted time, as (wanted time, image), sorted by time.

    Images are upright (display rotation and sample aspect ratio applied) and downscaled so that the
    longer side is at most `max_side` (never upscaled). One forward pass over the file: the decoder
    runs multi-threaded, and it seeks forward when the next wanted time is more than SEEK_AHEAD_S
    ahead. Times past the end of the video are dropped, so the result may be shorter than `times`.

    Unless `exact`, non-reference frames (most B-frames) of common codecs are not decoded at all,
    which roughly halves the work: the frame returned is then the nearest *reference* frame, at
    most a few frame durations (~0.1 s) from the wanted time, which does not matter for sampling.
    """
    wanted = sorted({max(0.0, float(t)) for t in times})
    if not wanted:
        return []
    with open_container(Path(path)) as container:
        stream = video_stream(container)
        stream.codec_context.thread_type = "AUTO"
        if not exact and stream.codec_context.name in SKIP_NONREF_CODECS:
            stream.codec_context.skip_frame = "NONREF"
        return _pick(container, stream, wanted, max_side)


def _pick(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: list[float],
    max_side: int,
) -> list[tuple[float, np.ndarray]]:
    out: list[tuple[float, np.ndarray]] = []
    # The last conversion, kept with its frame (holding the frame keeps identity checks valid), so a
    # frame wanted by several times is converted once.
    last: list = [None, None]
    reformatter = VideoReformatter()

    def emit(t: float, frame: av.video.frame.VideoFrame) -> None:
        if last[0] is not frame:
            last[:] = [frame, to_rgb(frame, stream, max_side, reformatter)]
        out.append((t, last[1]))

    i, prev, prev_t = 0, None, -math.inf

    def next_wanted() -> float | None:  # lets the decoder loop decide whether to seek
        return wanted[i] if i < len(wanted) else None

    for t, frame in _timed_frames(container, stream, next_wanted):
        while i < len(wanted) and wanted[i] <= t:
            nearest = prev if prev is not None and wanted[i] - prev_t < t - wanted[i] else frame
            emit(wanted[i], nearest)
            i += 1
        if i == len(wanted):
            break
        prev, prev_t = frame, t
    while i < len(wanted) and prev is not None and wanted[i] - prev_t <= _END_SLACK_S:
        emit(wanted[i], prev)
        i += 1
    return out


TimedFrame = tuple[float, av.video.frame.VideoFrame]


def _timed_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    next_wanted: Callable[[], float | None],
) -> Iterator[TimedFrame]:
    """(time, frame) in display order, seeking forward whenever next_wanted() is far ahead."""
    origin, tb = time_origin(container), stream.time_base
    rate = float(stream.average_rate or stream.guessed_rate or 25)
    last, count, sought, jumped = -math.inf, 0, None, False
    while True:
        seeked = False
        for frame in decoded_frames(container, stream):
            t = float(frame.pts * tb) - origin if frame.pts is not None and tb else count / rate
            count += 1
            if t < last and not jumped:
                continue  # reordering glitch in a damaged file: never go back in time
            last, jumped = t, False
            yield t, frame
            target = next_wanted()
            if target is not None and target - t > SEEK_AHEAD_S and sought != target and tb:
                sought = target  # seek once per target: sparse keyframes may land us short of it
                seeked = jumped = _seek(container, stream, target + origin)
                if seeked:
                    break  # a fresh decoded_frames() generator reads on from the new position
        if not seeked:
            return


def _seek(container: av.container.InputContainer, stream: av.video.stream.VideoStream, t: float) -> bool:
    try:
        container.seek(int(t / stream.time_base), stream=stream, backward=True)
    except (av.FFmpegError, OSError):
        return False  # unseekable input: keep decoding straight through
    return True


def to_rgb(
    frame: av.video.frame.VideoFrame,
    stream: av.video.stream.VideoStream,
    max_side: int,
    reformatter: VideoReformatter | None = None,
) -> np.ndarray:
    """An upright RGB image of `frame` with the longer side at most `max_side`."""
    width, height = display_size(frame, stream)
    rotation = frame_rotation(frame)
    if rotation in (90, 270):
        width, height = height, width  # back to the stored orientation; np.rot90 turns it afterwards
    scale = min(1.0, max_side / max(width, height))
    size = max(2, round(width * scale)), max(2, round(height * scale))
    reformatter = reformatter or VideoReformatter()  # reuse one across frames: it caches swscale state
    image = reformatter.reformat(
        frame, width=size[0], height=size[1], format="rgb24", interpolation="AREA"
    ).to_ndarray()
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=rotation // 90))
    return image


# ---------------------------------------------------------------- still images


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: low for blurred or flat frames."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


FACE_CROP_PX = 128  # crops shown on the people pages, and the size sharpness is judged at


def face_crop(image: np.ndarray, box: Box, margin: float = 0.25) -> np.ndarray:
    """The face in `box` (relative coordinates) with a margin around it, square, FACE_CROP_PX a side.
    One size for every crop, so that their sharpness compares across frames of any resolution."""
    h, w = image.shape[:2]
    side = max(box.w * w, box.h * h) * (1 + 2 * margin)
    cx, cy = (box.x + box.w / 2) * w, (box.y + box.h / 2) * h
    x0, y0 = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    x1, y1 = int(min(cx + side / 2, w)), int(min(cy + side / 2, h))
    crop = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    return cv2.resize(crop, (FACE_CROP_PX, FACE_CROP_PX), interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    """RGB image to JPEG bytes."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def encode_webp(image: np.ndarray, max_side: int, quality: int = 80) -> bytes:
    """RGB image to WebP bytes, downscaled so the longer side is at most `max_side`."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        size = max(1, round(width * scale)), max(1, round(height * scale))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise ValueError("WebP encoding failed")
    return data.tobytes()


def decode_image(data: bytes | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A photo (bytes or file) as an upright RGB uint8 array, EXIF orientation applied.

    The size comes from the header (Image.open reads no pixels): a picture past `max_pixels` is
    refused before anything is decoded (exif_transpose already decodes a PNG)."""
    name = data.name if isinstance(data, Path) else "the image"
    try:
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as img:
            check_pixels(*img.size, max_pixels, name)
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError as exc:
        raise InvalidMediaError(f"File not found: {name}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # Pillow's own limit
        raise InvalidMediaError(f"{name} has too many pixels to decode: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise InvalidMediaError(f"{name} is not a supported image") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt payloads
        raise InvalidMediaError(f"{name} is damaged and cannot be read: {exc}") from exc
