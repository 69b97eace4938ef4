"""Sampled frames as small JPEG artifacts, shared by scene_detect and vision_sample_frames."""

from __future__ import annotations

import cv2
import numpy as np

from heimdex.blobs.keys import frame_key
from heimdex.domain import FrameRef
from heimdex.media import encode_jpeg, sharpness
from heimdex.pipeline.context import StageContext


def thumbprint(image: np.ndarray) -> list[int]:
    """16x9 grey levels: enough to tell whether two frames of a shot show the same thing."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (16, 9), interpolation=cv2.INTER_AREA).ravel().tolist()


def store_frame(ctx: StageContext, t: float, image: np.ndarray, scene_index: int = -1) -> FrameRef:
    key = frame_key(ctx.video.id, t)
    ctx.blobs.put_bytes(key, encode_jpeg(image))
    return FrameRef(
        scene_index=scene_index, t_s=t, key=key, sharpness=sharpness(image), thumbprint=thumbprint(image)
    )
