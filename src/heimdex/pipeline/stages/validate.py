"""upload_validate: is this a video we can index? Records what it is."""

from __future__ import annotations

import uuid

from heimdex.errors import InvalidMediaError
from heimdex.media import probe
from heimdex.pipeline.artifacts import MEDIA_INFO, RUN
from heimdex.pipeline.context import StageContext


def _hours(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


def upload_validate(ctx: StageContext) -> None:
    size = ctx.blobs.size(ctx.video.original_key)
    if size > ctx.settings.max_file_bytes:
        raise InvalidMediaError(
            f"file is {size / 1e9:.1f} GB; the limit is {ctx.settings.max_file_bytes / 1e9:.1f} GB"
        )
    with ctx.blobs.local_path(ctx.video.original_key) as path:
        info = probe(path, max_pixels=ctx.settings.max_image_pixels)
    if info.duration_s > ctx.settings.max_duration_s:
        raise InvalidMediaError(
            f"video is {_hours(info.duration_s)} long; the limit is {_hours(ctx.settings.max_duration_s)}"
        )
    ctx.store.set_video_info(ctx.video.id, info)
    ctx.artifacts.save(MEDIA_INFO, info)
    # A fresh run id keeps this run's thumbnails and sidecars apart from the ones still being served.
    if not ctx.artifacts.exists(RUN):
        ctx.artifacts.save(RUN, {"run_id": uuid.uuid4().hex[:8]})
