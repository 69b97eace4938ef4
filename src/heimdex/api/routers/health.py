"""Health and Prometheus metrics (no authentication: they reveal no user data)."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from heimdex import __version__
from heimdex.api.deps import Ctx
from heimdex.api.openapi import PUBLIC

router = APIRouter(tags=["health"], responses=PUBLIC)


def _scheme(url: str) -> str:
    return urlparse(url).scheme or url


@router.get("/health", summary="Version, backends, loaded models and queue state")
def health(ctx: Ctx) -> dict:
    settings = ctx.settings
    return {
        "status": "ok",
        "version": __version__,
        "backends": {
            "database": _scheme(settings.resolved_database_url),
            "storage": _scheme(settings.resolved_storage_url),
            "queue": _scheme(settings.queue_url),
        },
        "models_loaded": ctx.heimdex.models.loaded(),
        "queue_depth": ctx.queue.depth(),
        "worker_busy": ctx.worker.current is not None,
        "uptime_s": round(time.time() - ctx.started_at, 1),
    }


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(ctx: Ctx) -> PlainTextResponse:
    return PlainTextResponse(ctx.metrics.render(), media_type="text/plain; version=0.0.4")
