"""Indexing jobs: what is queued or running, by polling or as server-sent events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from heimdex.api.context import AppContext
from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.openapi import USER
from heimdex.api.views import progress_of
from heimdex.domain import VideoState

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=USER)
POLL_S = 0.5
HEARTBEAT_S = 15.0


def _snapshot(ctx: AppContext, owner_id: str) -> dict[str, dict]:
    out = {}
    for video in ctx.heimdex.videos(owner_id):
        live = ctx.progress.get(video.id)
        out[video.id] = {
            "video_id": video.id,
            "filename": video.filename,
            "state": video.state.value,
            "progress": progress_of(ctx, video),
            "error": video.error,
            "scene_count": video.scene_count,
            "running": sorted(live.running) if live and video.state == VideoState.PROCESSING else [],
        }
    return out


@router.get("", summary="Your videos being indexed or waiting, with progress")
def list_jobs(user: CurrentUser, ctx: Ctx) -> dict:
    active = [j for j in _snapshot(ctx, user.id).values() if j["state"] in ("queued", "processing")]
    return {"queue_depth": ctx.queue.depth(), "jobs": active}


@router.get(
    "/events",
    summary="Server-sent events: one `job` event per change of any of your videos",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "An endless text/event-stream: `event: job` with the job as JSON `data:`",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def job_events(request: Request, user: CurrentUser, ctx: Ctx) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        last: dict[str, dict] = {}
        quiet = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            current = await asyncio.to_thread(_snapshot, ctx, user.id)
            changed = [job for vid, job in current.items() if last.get(vid) != job]
            changed += [{"video_id": vid, "state": "deleted"} for vid in last if vid not in current]
            for job in changed:
                yield f"event: job\ndata: {json.dumps(job)}\n\n"
            last = current
            quiet = 0.0 if changed else quiet + POLL_S
            if quiet >= HEARTBEAT_S:  # keeps proxies from closing an idle stream
                yield ": keep-alive\n\n"
                quiet = 0.0
            await asyncio.sleep(POLL_S)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
