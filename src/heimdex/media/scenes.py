"""Scene boundaries: find hard cuts in a video, then turn cuts into well-sized scenes.

Cut detection is PySceneDetect's ContentDetector (HSV difference between consecutive frames) fed
with small frames that we decode ourselves with PyAV, because decoding is nearly all the cost:
* the decoder runs multi-threaded (frame + slice threads on every core);
* non-reference frames (most B-frames) are not decoded at all: a hard cut still shows on the next
  decoded frame, and encoders put a reference frame on a cut, so the time stays exact;
* the in-loop deblocking filter is skipped: it only polishes pixels we shrink to 256 px anyway;
* frames are scaled to `analysis_width` and converted to BGR by swscale in one step, with area
  averaging: point sampling (FAST_BILINEAR) lets film grain alias into big frame differences, which
  on grainy footage raised false cuts that then masked the real one.
The skipping tricks are only used for codecs known to honour them; any other decoder complaint makes
us start over decoding everything.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream
import numpy as np
from av.video.reformatter import VideoReformatter
from scenedetect import ContentDetector, FrameTimecode
from scenedetect.common import Timecode

from heimdex.domain import SceneSpan
from heimdex.errors import InvalidMediaError
from heimdex.media.frames import to_rgb
from heimdex.media.probe import SKIP_NONREF_CODECS, decoded_frames, open_container, time_origin, video_stream

DEFAULT_THRESHOLD = 27.0  # PySceneDetect's default for ContentDetector, fine for hard cuts
_SKIP_LOOP_FILTER = frozenset({"h264", "hevc", "vp8", "vp9"})


@dataclass(frozen=True)
class FrameSampler:
    """Asks detect_cuts to hand over frames while it decodes, so the video is decoded only once.

    `on_frame(t, rgb)` receives the first decoded frame at or after every `every_s` seconds, upright
    and with its longer side at most `max_side`. If the fast pass has to be redone, times repeat.
    """

    every_s: float
    max_side: int
    on_frame: Callable[[float, np.ndarray], None]


def detect_cuts(
    path: Path,
    *,
    analysis_width: int = 256,
    threshold: float = DEFAULT_THRESHOLD,
    min_gap_s: float = 0.6,
    fast: bool = True,
    sampler: FrameSampler | None = None,
) -> list[float]:
    """Times (seconds from the start) where a new shot begins, ascending, never including 0.

    `min_gap_s` suppresses flashes: cuts closer together than this are merged. `fast=False` decodes
    every frame with the loop filter on (slower, only useful for codecs where skipping misbehaves).
    """
    if fast:
        try:
            return _detect(Path(path), analysis_width, threshold, min_gap_s, fast=True, sampler=sampler)
        except InvalidMediaError:
            pass  # a decoder that rejects the skipping options; the plain pass below decides
    return _detect(Path(path), analysis_width, threshold, min_gap_s, fast=False, sampler=sampler)


def _detect(
    path: Path,
    analysis_width: int,
    threshold: float,
    min_gap_s: float,
    *,
    fast: bool,
    sampler: FrameSampler | None,
) -> list[float]:
    with open_container(path) as container:
        stream = video_stream(container)
        # Sampled frames are looked at by OCR and face models: keep the deblocking filter for them.
        _tune_decoder(stream, fast, keep_loop_filter=sampler is not None)
        detector = ContentDetector(threshold=threshold, min_scene_len=float(min_gap_s))
        origin = time_origin(container)
        cuts: list[FrameTimecode] = []
        last = None
        next_sample, rgb = 0.0, VideoReformatter()
        for last, image, frame in _small_frames(container, stream, analysis_width):
            cuts += detector.process_frame(last, image)
            t = last.seconds - origin
            if sampler is not None and t >= next_sample:
                sampler.on_frame(max(0.0, t), to_rgb(frame, stream, sampler.max_side, rgb))
                next_sample = (math.floor(t / sampler.every_s) + 1) * sampler.every_s
        if last is not None:
            cuts += detector.post_process(last)
    times = sorted({round(c.seconds - origin, 3) for c in cuts})
    return [t for t in times if t > 0]


def _tune_decoder(stream: av.video.stream.VideoStream, fast: bool, keep_loop_filter: bool = False) -> None:
    ctx = stream.codec_context
    ctx.thread_type = "AUTO"
    if fast and ctx.name in SKIP_NONREF_CODECS:
        ctx.skip_frame = "NONREF"
    if fast and not keep_loop_filter and ctx.name in _SKIP_LOOP_FILTER:
        # Decoder options are read when the codec opens (on the first packet), so setting them here works.
        ctx.options = {**ctx.options, "skip_loop_filter": "all"}


def _small_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream, width: int):
    """(timecode, small BGR image, frame) for each decoded frame; damaged packets are skipped."""
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)  # scenedetect refuses int rates
    size: tuple[int, int] | None = None
    # One reformatter for the whole pass: frame.reformat() builds a fresh swscale context per call,
    # which measured 2-3x slower than the scaling itself.
    reformatter = VideoReformatter()
    for count, frame in enumerate(decoded_frames(container, stream)):
        if size is None:
            scale = min(1.0, width / frame.width)
            size = max(2, round(frame.width * scale) // 2 * 2), max(2, round(frame.height * scale) // 2 * 2)
        if frame.pts is not None and frame.time_base is not None:
            timecode = FrameTimecode(Timecode(frame.pts, frame.time_base), fps=rate)
        else:
            timecode = FrameTimecode(count, fps=rate)
        # Rotation is irrelevant to a frame difference, so frames stay in stored orientation.
        image = reformatter.reformat(
            frame, width=size[0], height=size[1], format="bgr24", interpolation="AREA"
        ).to_ndarray()
        yield timecode, image, frame


# ---------------------------------------------------------------- planning


def plan_scenes(
    cuts: Sequence[float],
    duration_s: float,
    *,
    min_scene_s: float,
    max_scene_s: float,
    pauses: Sequence[tuple[float, float]] = (),
) -> list[SceneSpan]:
    """Scenes covering [0, duration_s] exactly, in order, with no gaps or overlaps.

    A shot shorter than `min_scene_s` is merged into the shot after it (the last one into the one
    before). A shot longer than `max_scene_s` is split into pieces no longer than that, each split in
    the middle of a speech pause (`pauses`: silent intervals) when one falls in the right stretch,
    so no sentence is cut in half; otherwise it is split evenly.
    """
    if duration_s <= 0:
        return []
    bounds = _merge_short(_clean(cuts, duration_s), duration_s, min_scene_s)
    mids = sorted((a + b) / 2 for a, b in pauses if b > a)
    lengths = {(a + b) / 2: b - a for a, b in pauses if b > a}
    edges = [0.0]
    for start, end in itertools.pairwise(bounds):
        edges += _split_long(start, end, min_scene_s, max_scene_s, mids, lengths)
        edges.append(end)
    edges[-1] = float(duration_s)
    pairs = itertools.pairwise(edges)
    return [SceneSpan(index=i, start_s=a, end_s=b) for i, (a, b) in enumerate(pairs)]


def _clean(cuts: Sequence[float], duration_s: float) -> list[float]:
    """Sorted, de-duplicated cuts strictly inside the video, rounded to milliseconds."""
    return sorted({round(float(c), 3) for c in cuts if 0 < c < duration_s and math.isfinite(c)})


def _merge_short(cuts: list[float], duration_s: float, min_scene_s: float) -> list[float]:
    """Boundaries [0, ..., duration] after folding shots shorter than min_scene_s into a neighbour."""
    bounds = [0.0]
    for cut in cuts:
        if cut - bounds[-1] >= min_scene_s:
            bounds.append(cut)  # otherwise the short shot runs on into the next one
    if len(bounds) > 1 and duration_s - bounds[-1] < min_scene_s:
        bounds.pop()  # a short last shot joins the one before it
    bounds.append(float(duration_s))
    return bounds


def _split_long(
    start: float,
    end: float,
    min_scene_s: float,
    max_scene_s: float,
    mids: list[float],
    lengths: dict[float, float],
) -> list[float]:
    """Split points inside (start, end) so no piece is longer than max_scene_s."""
    points: list[float] = []
    at = start
    while end - at > max_scene_s:
        pieces = math.ceil((end - at) / max_scene_s)
        # Accept a pause anywhere from half a piece to a full piece ahead, leaving a usable remainder.
        lo, hi = at + max(min_scene_s, max_scene_s / 2), min(at + max_scene_s, end - min_scene_s)
        inside = [m for m in mids if lo <= m <= hi]
        # The longest pause is the most natural break (end of a paragraph rather than a comma).
        split = max(inside, key=lambda m: lengths[m]) if inside else at + (end - at) / pieces
        split = round(split, 3)
        if not at < split < end:  # degenerate settings (min > max): give up splitting this shot
            break
        points.append(split)
        at = split
    return points
