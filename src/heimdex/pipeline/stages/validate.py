"""upload_validate: is this a video we can index? Records what it is."""

from __future__ import annotations

import uuid

from heimdex.errors import InvalidMediaError
from heimdex.media import probe
from heimdex.pipeline.artifacts import MEDIA_INFO, RUN
from heimdex.pipeline.context import StageContext
from heimdex.units import hours_text, sizes_apart


def upload_validate(ctx: StageContext) -> None:
    size = ctx.blobs.size(ctx.video.original_key)
    if size > ctx.settings.max_file_bytes:
        shown, limit = sizes_apart(size, ctx.settings.max_file_bytes)
        raise InvalidMediaError(f"file is {shown}; the limit is {limit}")
    with ctx.original() as path:
        info = probe(path, max_pixels=ctx.settings.max_image_pixels)
    if info.duration_s > (limit_s := ctx.settings.max_duration_s):
        raise InvalidMediaError(
            f"video is {hours_text(info.duration_s)} long; the limit is {hours_text(limit_s)}"
        )
    ctx.store.set_video_info(ctx.video.id, info)
    ctx.artifacts.save(MEDIA_INFO, info)
    # A fresh run id keeps this run's thumbnails and sidecars apart from the ones still being served.
    if not ctx.artifacts.exists(RUN):
        ctx.artifacts.save(RUN, {"run_id": uuid.uuid4().hex[:8]})
