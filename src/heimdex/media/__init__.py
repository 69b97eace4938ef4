"""Media layer: probing, audio extraction, frame sampling and scene cuts, all decoded with PyAV."""

from heimdex.media.audio import extract_audio
from heimdex.media.frames import (
    decode_frames,
    decode_image,
    encode_jpeg,
    encode_webp,
    face_crop,
    sharpness,
)
from heimdex.media.probe import probe
from heimdex.media.scenes import FrameSampler, detect_cuts, plan_scenes

__all__ = [
    "FrameSampler",
    "decode_frames",
    "decode_image",
    "detect_cuts",
    "encode_jpeg",
    "encode_webp",
    "extract_audio",
    "face_crop",
    "plan_scenes",
    "probe",
    "sharpness",
]
