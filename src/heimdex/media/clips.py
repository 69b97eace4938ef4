"""Cut a moment out of a video as an MP4, with PyAV.

Two ways, as editors offer them:
- copy (the default): packets are copied as they are, so the clip costs no decoding and keeps the
  original quality; it must start on a keyframe, so it starts at the last keyframe at or before the
  asked start (up to one keyframe interval early), and it ends at the asked end or a few frames
  after it (the frames decoded before it, when frames are reordered);
- exact: frames are decoded and encoded again (H.264 and AAC), so the clip starts within one frame of
  the asked start; it costs an encode of the clip's length.

Times are seconds from the start of the file, as scenes have them (the container's start time is
the origin). The returned Clip says where the clip really starts and ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.audio.resampler
import numpy as np
from av.audio.fifo import AudioFifo

from heimdex.errors import InvalidMediaError
from heimdex.media.probe import decoded_frames, open_container, time_origin

_MUX_OPTIONS = {"movflags": "+faststart"}  # playable while it downloads


@dataclass(frozen=True)
class Clip:
    path: Path
    start_s: float  # where the clip starts in the source
    end_s: float  # where it ends in the source
    exact: bool


def cut_clip(source: Path, start_s: float, end_s: float, out: Path, *, exact: bool = False) -> Clip:
    """Write the part of `source` between `start_s` and `end_s` to `out` (an .mp4)."""
    if not 0 <= start_s < end_s:
        raise ValueError(f"a clip needs 0 <= start < end, not {start_s}..{end_s}")
    with open_container(source) as container:
        video = next(iter(container.streams.video), None)
        audio = next(iter(container.streams.audio), None)
        if video is None and audio is None:
            raise InvalidMediaError(f"{source.name} has neither video nor audio to cut")
        origin = time_origin(container)
        cut = _encoded if exact else _copied
        first, last = cut(container, video, audio, origin + start_s, origin + end_s, out)
    if first is None:
        out.unlink(missing_ok=True)
        raise InvalidMediaError(f"nothing to cut between {start_s:.2f} s and {end_s:.2f} s")
    return Clip(out, round(first - origin, 3), round(last - origin, 3), exact)


def _seconds(value: int | None, time_base: Fraction) -> float | None:
    return None if value is None else float(value * time_base)


def _copied(container, video, audio, start: float, end: float, out: Path) -> tuple[float | None, float]:
    """Packets from the last video keyframe at or before `start` until `end`, timestamps rebased.

    Video packets are taken in decoding order until one decodes at or after `end`, so that every
    frame kept has the frames it refers to: with reordered (B) frames the clip may run a few frames
    past `end`. Audio follows the video to where it really ends."""
    container.seek(round(start / video.time_base) if video else round(start * av.time_base), stream=video)
    streams = [s for s in (video, audio) if s is not None]
    first: float | None = None
    last = start
    early: list[tuple[float, av.Packet]] = []  # audio stored before the keyframe: kept from its time on
    late: list[tuple[float, av.Packet]] = []  # audio past `end`, kept if the video runs that long
    with av.open(str(out), "w", format="mp4", options=_MUX_OPTIONS) as output:
        outputs = {s.index: output.add_stream_from_template(s) for s in streams}

        def mux(packet: av.Packet, at: float) -> None:
            nonlocal last
            base = round(first / packet.time_base)
            packet.pts -= base
            packet.dts -= base
            packet.stream = outputs[packet.stream.index]
            output.mux(packet)
            last = max(last, at + (_seconds(packet.duration, packet.time_base) or 0.0))

        video_done = False
        for packet in container.demux(*streams):
            at = _seconds(packet.pts, packet.time_base)
            if at is None or packet.dts is None:
                continue
            is_video = packet.stream is video
            if first is None:  # the clip opens on a video keyframe (a file without video: anywhere)
                if video is not None and not (is_video and packet.is_keyframe):
                    if not is_video:
                        early.append((at, packet))
                    continue
                first = at
                for early_at, early_packet in early:
                    if early_at >= first:
                        mux(early_packet, early_at)
            if is_video and (video_done or _seconds(packet.dts, packet.time_base) >= end):
                video_done = True
                continue
            if at < first:
                continue
            if not is_video and at >= end:
                if video is None or (video_done and at >= last):
                    break
                late.append((at, packet))
                continue
            mux(packet, at)
        for at, packet in late:
            if at < last:
                mux(packet, at)
    return first, last


def _encoded(container, video, audio, start: float, end: float, out: Path) -> tuple[float | None, float]:
    """Frames from `start` to `end`, decoded and encoded again (every stream is added before the
    first packet: the MP4 header is written then)."""
    first: float | None = None
    last = start
    with av.open(str(out), "w", format="mp4", options=_MUX_OPTIONS) as output:
        pictures = _video_encoder(output, video) if video is not None else None
        sound = _audio_encoder(output, audio) if audio is not None else None
        if pictures is not None:
            rate = pictures.codec_context.framerate
            container.seek(round(start / video.time_base), stream=video)
            for n, frame in enumerate(_between(container, video, start, end)):
                first = frame.time if first is None else first
                last = frame.time + 1 / float(rate)
                frame = frame.reformat(format="yuv420p")
                frame.pts, frame.time_base = n, 1 / rate
                output.mux(pictures.encode(frame))
            output.mux(pictures.encode(None))
        if sound is not None:
            _encode_audio(container, audio, start, end, output, sound)
            if video is None:
                first, last = start, end
    return first, min(last, end)


def _video_encoder(output, video):
    rate = video.average_rate or video.guessed_rate or Fraction(25)
    encoder = output.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "20"})
    encoder.width, encoder.height = video.codec_context.width, video.codec_context.height
    encoder.pix_fmt = "yuv420p"
    return encoder


def _audio_encoder(output, audio):
    layout = audio.codec_context.layout.name if audio.codec_context.layout else "stereo"
    return output.add_stream("aac", rate=audio.codec_context.sample_rate or 48000, layout=layout)


_SAME_S = 0.0005  # scene times are kept to the millisecond: a frame this close to a time is at it


def _between(container, stream, start: float, end: float) -> Iterator:
    for frame in decoded_frames(container, stream):
        if frame.time is None or frame.time < start - _SAME_S:
            continue
        if frame.time >= end - _SAME_S:
            return
        yield frame


def _encode_audio(container, audio, start: float, end: float, output, encoder) -> None:
    """The audio between `start` and `end` as AAC, trimmed to the sample."""
    rate, layout = encoder.codec_context.sample_rate, encoder.codec_context.layout.name
    samples = _samples(container, audio, start, end, rate=rate, layout=layout)
    samples = samples[:, : max(0, round((end - start) * rate))]
    fifo = AudioFifo()
    if samples.shape[1]:
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
        frame.sample_rate = rate
        fifo.write(frame)
    written = 0
    size = encoder.codec_context.frame_size or 1024
    while fifo.samples:
        frame = fifo.read(min(size, fifo.samples))
        frame.pts, frame.time_base = written, Fraction(1, rate)
        written += frame.samples
        output.mux(encoder.encode(frame))
    output.mux(encoder.encode(None))


@dataclass(frozen=True)
class Part:
    """One moment of a reel: a file and two times in it (seconds from the file's start)."""

    source: Path
    start_s: float
    end_s: float


FADE_S = 0.4  # a fade through black: this long out of a part, as long into the next
_REEL_RATE = 48000  # the reel's sound: 48 kHz stereo AAC, whatever the parts had


def join_parts(
    parts: list[Part],
    out: Path,
    *,
    fade: bool = True,
    progress: Callable[[float], None] = lambda fraction: None,
) -> float:
    """Encode the parts one after the other into one MP4 (H.264 and AAC), in the picture size and
    frame rate of the first, each cut exactly; with `fade`, each part fades in from black and out to
    black, picture and sound. Returns the reel's length in seconds."""
    if not parts:
        raise ValueError("a reel needs at least one part")
    with open_container(parts[0].source) as first:
        if not first.streams.video:
            raise InvalidMediaError(f"{parts[0].source.name} has no picture to make a reel of")
        video = first.streams.video[0]
        rate = video.average_rate or video.guessed_rate or Fraction(25)
        size = (video.codec_context.width, video.codec_context.height)
    total = sum(p.end_s - p.start_s for p in parts)
    reel = _Reel(rate, size, fade)
    with av.open(str(out), "w", format="mp4", options=_MUX_OPTIONS) as output:
        reel.open(output)
        done = 0.0
        for part in parts:
            length = part.end_s - part.start_s
            reel.add(part, lambda f, done=done, length=length: progress((done + f * length) / total))
            done += length
        reel.close()
    progress(1.0)
    return reel.frames / float(rate)


class _Reel:
    """The encoders of one reel and where they are: frames and samples written so far."""

    def __init__(self, rate: Fraction, size: tuple[int, int], fade: bool) -> None:
        self.rate, self.size, self.fade = rate, size, fade
        self.frames = self.samples = 0

    def open(self, output) -> None:
        self.output = output
        self.pictures = output.add_stream(
            "libx264", rate=self.rate, options={"preset": "veryfast", "crf": "21"}
        )
        self.pictures.width, self.pictures.height = self.size
        self.pictures.pix_fmt = "yuv420p"
        self.sound = output.add_stream("aac", rate=_REEL_RATE, layout="stereo")
        self.fifo = AudioFifo()

    def add(self, part: Part, progress: Callable[[float], None]) -> None:
        with open_container(part.source) as container:
            origin = time_origin(container)
            start, end = origin + part.start_s, origin + part.end_s
            frames_before = self.frames
            video = next(iter(container.streams.video), None)
            if video is not None:
                container.seek(round(start / video.time_base), stream=video)
                for frame in _between(container, video, start, end):
                    self._picture(frame, frame.time - start, end - start)
                    progress(min(1.0, (frame.time - start) / (end - start)))
            seconds = (self.frames - frames_before) / float(self.rate)
            audio = next(iter(container.streams.audio), None)
            sound = _samples(container, audio, start, start + seconds) if audio is not None else None
        self._sound(sound, round(seconds * _REEL_RATE))

    def _gain(self, t: float, length: float) -> float:
        """Brightness and loudness at `t` seconds into a part of `length`: ramps at both ends."""
        if not self.fade:
            return 1.0
        return max(0.0, min(1.0, t / FADE_S, (length - t) / FADE_S))

    def _picture(self, frame, t: float, length: float) -> None:
        frame = frame.reformat(width=self.size[0], height=self.size[1], format="rgb24")
        gain = self._gain(t, length)
        if gain < 1.0:
            pixels = (frame.to_ndarray().astype(np.float32) * gain).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        frame = frame.reformat(format="yuv420p")
        frame.pts, frame.time_base = self.frames, 1 / self.rate
        self.frames += 1
        self.output.mux(self.pictures.encode(frame))

    def _sound(self, samples: np.ndarray | None, count: int) -> None:
        """`count` samples of the part's sound (silence where it has none), faded, into the fifo."""
        block = np.zeros((2, count), dtype=np.float32)
        if samples is not None:
            n = min(count, samples.shape[1])
            block[:, :n] = samples[:, :n]
        if self.fade and count:
            t = np.arange(count, dtype=np.float32) / _REEL_RATE
            block *= np.clip(np.minimum(t, count / _REEL_RATE - t) / FADE_S, 0.0, 1.0)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = _REEL_RATE
        self.fifo.write(frame)
        self._drain(final=False)

    def _drain(self, final: bool) -> None:
        size = self.sound.codec_context.frame_size or 1024
        while self.fifo.samples >= size or (final and self.fifo.samples):
            frame = self.fifo.read(min(size, self.fifo.samples))
            frame.pts, frame.time_base = self.samples, Fraction(1, _REEL_RATE)
            self.samples += frame.samples
            self.output.mux(self.sound.encode(frame))

    def close(self) -> None:
        self._drain(final=True)
        self.output.mux(self.pictures.encode(None))
        self.output.mux(self.sound.encode(None))


def _samples(
    container, audio, start: float, end: float, *, rate: int = _REEL_RATE, layout: str = "stereo"
) -> np.ndarray:
    """The sound from `start` (to the sample) until `end` or a little after, as planar float32 of
    `layout` at `rate`, shape (channels, n)."""
    resampler = av.audio.resampler.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks = []
    container.seek(round(start / audio.time_base), stream=audio)
    for frame in decoded_frames(container, audio):
        if frame.time is None or frame.time + frame.samples / frame.sample_rate <= start:
            continue
        if frame.time >= end:
            break
        for out in resampler.resample(frame):
            skip = max(0, round((start - frame.time) * rate))  # the frame that straddles the start
            chunks.append(out.to_ndarray()[:, skip:])
    channels = len(av.AudioLayout(layout).channels)
    return np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), dtype=np.float32)
