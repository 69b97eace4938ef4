"""Pull the soundtrack out of a video as the mono float32 samples speech recognition wants."""

from __future__ import annotations

from pathlib import Path

import av
import av.audio.resampler
import av.container
import numpy as np

from heimdex.media.probe import decoded_frames, open_container, time_origin

# The output buffer is sized from the stated duration plus this slack; it only grows (by half) for
# files whose header under-states their length, so a 4 h film at 16 kHz costs one 0.9 GB array
# instead of a list of chunks plus their concatenation (twice that at the peak).
_SLACK_S = 2.0
_UNKNOWN_LENGTH_S = 60.0


def extract_audio(path: Path, sample_rate: int = 16000) -> np.ndarray:
    """The first decodable audio stream, mixed to mono, resampled, as float32 in [-1, 1].

    Returns an empty array for a file without audio. Sample 0 is time 0 of the file: if the audio
    starts late (common in cut recordings) the gap is filled with silence so that sample offsets
    match video timestamps. Damaged packets are skipped rather than failing the whole file.
    """
    path = Path(path)
    with open_container(path) as container:
        stream = next((s for s in container.streams.audio if s.codec_context is not None), None)
        if stream is None:
            return np.zeros(0, dtype=np.float32)
        seconds = container.duration / av.time_base if container.duration else _UNKNOWN_LENGTH_S
        buffer = _Buffer(int((seconds + _SLACK_S) * sample_rate))
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        origin = time_origin(container)
        for frame in decoded_frames(container, stream):
            if buffer.size == 0 and frame.time is not None:
                buffer.pad_to(round((frame.time - origin) * sample_rate))
            for out in resampler.resample(frame):
                buffer.append(out.to_ndarray()[0])
        for out in resampler.resample(None):  # flush the resampler's internal delay
            buffer.append(out.to_ndarray()[0])
        return buffer.result()


class _Buffer:
    """A growable float32 array filled in place."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, 1), dtype=np.float32)
        self.size = 0

    def append(self, samples: np.ndarray) -> None:
        end = self.size + len(samples)
        if end > len(self._data):
            self._data = np.resize(self._data, max(end, len(self._data) * 3 // 2))
        self._data[self.size : end] = samples
        self.size = end

    def pad_to(self, samples: int) -> None:
        """Leading silence up to `samples` (ignored when tiny or negative)."""
        if samples > 1:
            self.append(np.zeros(samples, dtype=np.float32))

    def result(self) -> np.ndarray:
        data = self._data[: self.size]
        np.clip(data, -1.0, 1.0, out=data)  # float decoders (AAC, Vorbis) can overshoot slightly
        # A view would pin a buffer that grew far past the audio; copy only when that wastes memory.
        return data.copy() if len(self._data) > self.size * 1.1 + 16000 else data
