"""The application factory: `create_app(settings)` wires the service, accounts, queue and routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from heimdex import __version__
from heimdex.accounts import Accounts, open_account_store
from heimdex.accounts.ratelimit import RateLimiter
from heimdex.api.context import AppContext
from heimdex.api.errors import UnhandledErrors, install_error_handlers
from heimdex.api.guards import UrlGuardMiddleware
from heimdex.api.headers import SecurityHeaders, origin_of
from heimdex.api.metrics import Metrics
from heimdex.api.routers import (
    auth,
    faces,
    health,
    jobs,
    people,
    reels,
    scenes,
    search,
    transcripts,
    unnamed,
    users,
    videos,
)
from heimdex.api.session import SessionMiddleware
from heimdex.api.timeouts import BodyTimeoutMiddleware
from heimdex.api.uploads import UploadArea
from heimdex.blobs.keys import CSP_PROBE_KEY
from heimdex.logging import get_logger
from heimdex.ml.registry import Models
from heimdex.queue import Progress, Worker, open_queue
from heimdex.queue.base import is_remote
from heimdex.reels import Reels
from heimdex.reembed import LibraryReembed, process_holder
from heimdex.service import Heimdex
from heimdex.settings import Settings

log = get_logger(__name__)

DESCRIPTION = """Heimdex finds the moment you need in your videos. Authenticate with
`Authorization: Bearer <token>`: an access token from `POST /auth/login` or a personal API token
from `POST /auth/tokens`. Errors are JSON: `{"status": 404, "message": "..."}`."""


def build_context(
    settings: Settings, models: Models | None = None, heimdex: Heimdex | None = None
) -> AppContext:
    heimdex = heimdex or Heimdex(settings, models=models)
    accounts = Accounts(settings, open_account_store(settings.resolved_database_url))
    progress = Progress()
    holder: dict = {}
    metrics = Metrics(lambda: holder["queue"].depth())
    worker = Worker(
        heimdex, progress, on_stage_done=lambda stage, s: metrics.stage_duration.observe(s, stage)
    )
    uploads = RateLimiter(settings.user_uploads_per_hour, 3600) if settings.user_uploads_per_hour else None
    ctx = AppContext(
        settings=settings,
        heimdex=heimdex,
        accounts=accounts,
        queue=None,  # type: ignore[arg-type]
        worker=worker,
        progress=progress,
        metrics=metrics,
        upload_limiter=uploads,
        reels=Reels(heimdex),
        reembed=LibraryReembed(heimdex, process_holder("serve"), settings.queue_lease_s),
    )
    ctx.queue = holder["queue"] = open_queue(settings, worker, ctx.recover_jobs, heimdex.store)
    worker.after_job = lambda video_id, state: _after_job(ctx, video_id, state)
    if is_remote(settings.queue_url):
        # `heimdex worker` processes run the stages: live progress and stage timings come from them,
        # through the Redis side channel (queue/channel.py); without one, the ledger's stage states.
        from heimdex.queue.broker import progress_channel
        from heimdex.queue.channel import ChannelProgress

        channel = progress_channel(settings)
        ctx.progress = ChannelProgress(channel)
        metrics.workers = channel
        metrics.broker = ctx.queue
    return ctx


def _after_job(ctx: AppContext, video_id: str, state: str) -> None:
    ctx.metrics.jobs.inc(state)
    with ctx.deferred.lock:
        delete = ctx.deferred.deletes.pop(video_id, None)
    if delete is not None:
        delete()


def create_app(
    settings: Settings | None = None,
    *,
    models: Models | None = None,
    heimdex: Heimdex | None = None,
    run_worker: bool | None = None,
) -> FastAPI:
    """The API and web app. The in-process worker runs while the app is up (lifespan) unless disabled.

    With a remote queue (redis://, amqp://) the API only enqueues: `heimdex worker` processes index, and this
    process loads no pipeline model (only the text model, lazily, on the first search).
    """
    settings = settings or Settings()
    ctx = build_context(settings, models, heimdex)
    remote = is_remote(settings.queue_url)
    run_worker = settings.worker_enabled if run_worker is None else run_worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        UploadArea.claim(settings.home / "uploads")  # removes what a process killed mid-upload left
        if run_worker or remote:
            ctx.queue.start()  # remote: only re-enqueues what the store says is unfinished
        if run_worker and not remote and ctx.heimdex.models.clip_configured:
            # Frames the configured CLIP model has not embedded yet (it changed, or is new): done
            # beside the worker; searches keep the earlier vectors meanwhile. In server mode the
            # `heimdex worker` processes of the vision queue do it (one at a time).
            ctx.reembed.start()
        log.info(
            "api.started",
            version=__version__,
            worker="remote" if remote else run_worker,
            home=str(settings.home),
        )
        yield
        ctx.reembed.stop()
        ctx.queue.stop()
        ctx.reels.close()
        ctx.heimdex.close()

    app = FastAPI(title="Heimdex", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.ctx = ctx
    install_error_handlers(app)
    routers = (health, auth, users, videos, transcripts, scenes, reels, search, people, unnamed, faces, jobs)
    for module in routers:
        app.include_router(module.router)
    from heimdex.web.routes import router as web_router

    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=str(files("heimdex.web").joinpath("static"))), name="static")
    app.add_middleware(UrlGuardMiddleware)  # inside the session middleware: its 400s are counted
    # Outermost last: SessionMiddleware counts what SecurityHeaders finished, and UnhandledErrors
    # turns an unhandled exception into the JSON 500 that both of them see.
    app.add_middleware(UnhandledErrors)
    # With object storage the player's source is a presigned URL there: the policy lets media come from it.
    stream_origin = origin_of(ctx.heimdex.blobs.url(CSP_PROBE_KEY))
    app.add_middleware(
        SecurityHeaders,
        media_sources=[stream_origin] if stream_origin else [],
        docs_paths=[app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url],
    )
    app.add_middleware(SessionMiddleware, settings=settings, metrics=ctx.metrics)
    app.add_middleware(BodyTimeoutMiddleware, timeout_s=settings.request_body_timeout_s)
    return app
