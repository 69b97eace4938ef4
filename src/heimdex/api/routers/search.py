"""Search: the `heimdex search --json` hit shape, plus links to play each scene."""

from __future__ import annotations

import functools
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from heimdex.api.context import AppContext
from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.errors import ApiError
from heimdex.api.openapi import USER, errors, multipart_files
from heimdex.api.uploads import Limit, receive_files
from heimdex.api.views import hit_json
from heimdex.domain import SearchHit
from heimdex.validation import check_text

router = APIRouter(tags=["search"], responses=USER)
DATE_SORT_POOL = 200  # date order re-sorts this many of the best hits


class SearchSort(StrEnum):
    relevance = "relevance"
    date = "date"


class MinConfidence(StrEnum):
    auto = "auto"
    low = "low"
    medium = "medium"
    high = "high"


def parse_time(value: str | None, name: str) -> float | None:
    """An ISO date or datetime, or seconds since the epoch."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise ApiError(
            400, f"{name}: expected an ISO date (2024-05-01) or epoch seconds, got {value!r}"
        ) from exc


def run_search(
    ctx: AppContext,
    owner_id: str,
    q: str,
    *,
    limit: int = 20,
    offset: int = 0,
    people: tuple[str, ...] = (),
    videos: tuple[str, ...] = (),
    created_from: float | None = None,
    created_to: float | None = None,
    sort: SearchSort = SearchSort.relevance,
    per_video: int | None = None,
    all_scenes: bool = False,
    min_confidence: MinConfidence = MinConfidence.auto,
    image: bytes | None = None,
    like: str | None = None,
) -> tuple[list[SearchHit], float]:
    """per_video None: the setting; all_scenes: no per-video cap (see Heimdex.search). With `image`
    (a photo) or `like` (a scene id) the scenes are ranked by look, and `q` only filters."""
    check_text(q, "the query (q)", allow_whitespace=True)  # the URL guard refuses these first
    if image is None and like is None and not q.strip() and not people:
        raise ApiError(400, "give a query (q) or a person")
    started = time.perf_counter()
    by_date = sort == SearchSort.date
    result = ctx.heimdex.search(
        q,
        image=image,
        like=like,
        owner_id=owner_id,
        limit=max(DATE_SORT_POOL, offset + limit) if by_date else limit,
        offset=0 if by_date else offset,
        per_video=per_video,
        all_scenes=all_scenes,
        people=people,
        video_ids=videos,
        created_from=created_from,
        created_to=created_to,
        min_confidence=min_confidence.value,
    )
    hits = result.hits
    if by_date:
        created = {v.id: v.created_at for v in ctx.heimdex.videos(owner_id)}
        hits = sorted(hits, key=lambda h: (-created.get(h.video_id, 0.0), h.start_s))[offset : offset + limit]
    elapsed = time.perf_counter() - started
    ctx.metrics.search_latency.observe(elapsed)
    return hits, elapsed * 1000


@router.get(
    "/search",
    summary="Search your scenes",
    responses=errors(
        404, _400="no query and no person, a bad date, or a bad request", _404="no such video of yours"
    ),
)
def search(
    user: CurrentUser,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=1000, description='Words, "phrases", person:NAME, video:ID')] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    person: Annotated[list[str] | None, Query(description="Name or id; every one listed must appear")] = None,
    video: Annotated[list[str] | None, Query(description="Only these video ids")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Videos added on or after (ISO or epoch)")
    ] = None,
    to: Annotated[str | None, Query(description="Videos added before (ISO or epoch)")] = None,
    sort: SearchSort = SearchSort.relevance,
    per_video: Annotated[int | None, Query(ge=1, le=1000, description="Hits per video (default 3)")] = None,
    min_confidence: Annotated[
        MinConfidence,
        Query(description="Hide hits below this confidence; auto hides the low tail after a better best hit"),
    ] = MinConfidence.auto,
) -> dict:
    for video_id in video or ():
        ctx.heimdex.video(video_id, user.id)  # 404 for a video that is not the caller's
    hits, took_ms = run_search(
        ctx,
        user.id,
        q,
        limit=limit,
        offset=offset,
        people=tuple(person or ()),
        videos=tuple(video or ()),
        created_from=parse_time(from_, "from"),
        created_to=parse_time(to, "to"),
        sort=sort,
        per_video=per_video,
        min_confidence=min_confidence,
    )
    return results_json(hits, took_ms, query=q, limit=limit, offset=offset, sort=sort.value)


IMAGE_BYTES = 20 * 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@router.post(
    "/search/image",
    summary="Search your scenes by an example photo (multipart, field `file`)",
    responses=errors(
        400,
        404,
        413,
        415,
        422,
        _400="no photo, or a bad request",
        _404="no such video or person of yours",
        _415="not multipart/form-data, or not a JPEG, PNG, WebP or BMP photo",
        _422="the photo cannot be read, or has too many pixels",
    ),
    openapi_extra=multipart_files("The example photo, in a field named `file`."),
)
async def search_image(
    request: Request,
    user: CurrentUser,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=1000, description="Only person:NAME and video:ID terms count")] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    person: Annotated[list[str] | None, Query(description="Name or id; every one listed must appear")] = None,
    video: Annotated[list[str] | None, Query(description="Only these video ids")] = None,
    per_video: Annotated[int | None, Query(ge=1, le=1000, description="Hits per video (default 3)")] = None,
    min_confidence: MinConfidence = MinConfidence.auto,
) -> dict:
    photo = await receive_photo(request, ctx)
    for video_id in video or ():
        ctx.heimdex.video(video_id, user.id)  # 404 for a video that is not the caller's
    hits, took_ms = await run_in_threadpool(  # the model and the search: off the event loop
        functools.partial(
            run_search,
            ctx,
            user.id,
            q,
            limit=limit,
            offset=offset,
            people=tuple(person or ()),
            videos=tuple(video or ()),
            per_video=per_video,
            min_confidence=min_confidence,
            image=photo,
        )
    )
    return results_json(hits, took_ms, query=q, limit=limit, offset=offset)


async def receive_photo(request: Request, ctx: AppContext) -> bytes:
    """The one photo of a multipart upload (field `file`), within IMAGE_BYTES; 400/413/415 else."""
    files = await receive_files(
        request,
        ctx.settings.home / "uploads",
        Limit(IMAGE_BYTES, f"a photo may be at most {IMAGE_BYTES // 1024**2} MB"),
    )
    try:
        if len(files) != 1:
            raise ApiError(400, "send one photo in a multipart field named `file`")
        if not files[0].filename.lower().endswith(IMAGE_SUFFIXES):
            raise ApiError(415, f"{files[0].filename}: send a JPEG, PNG, WebP or BMP photo")
        return files[0].path.read_bytes()
    finally:
        for f in files:
            f.path.unlink(missing_ok=True)


@router.get(
    "/scenes/{scene_id}/similar",
    summary="More like this: scenes that look like one of yours (the scene itself left out)",
    responses=errors(404, _404="no such scene of yours, or it has no image vectors (reprocess its video)"),
)
def more_like_this(
    scene_id: str,
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    per_video: Annotated[int | None, Query(ge=1, le=1000, description="Hits per video (default 3)")] = None,
    min_confidence: MinConfidence = MinConfidence.auto,
) -> dict:
    hits, took_ms = run_search(
        ctx,
        user.id,
        "",
        limit=limit,
        offset=offset,
        per_video=per_video,
        min_confidence=min_confidence,
        like=scene_id,
    )
    return results_json(hits, took_ms, scene_id=scene_id, limit=limit, offset=offset)


@router.get(
    "/search/clip",
    summary="How far your frames are embedded with the configured CLIP-style model, and whose vectors"
    " your searches use meanwhile",
)
def clip_status(user: CurrentUser, ctx: Ctx) -> dict:
    """After HEIMDEX_CLIP_MODEL changes, your searches keep to the earlier model's vectors (`serving`)
    until `embedded` reaches `frames`; `reembedding` says some process is re-embedding the library now
    (this server's in-process worker, or in server mode one of the vision queue's `heimdex worker`
    processes; `heimdex reembed` run by hand is not counted)."""
    coverage = ctx.heimdex.clip_coverage(user.id)
    return {
        "model": coverage.configured,
        "serving": coverage.serving,
        "frames": coverage.frames,
        "embedded": coverage.embedded,
        "complete": coverage.complete,
        "reembedding": ctx.reembed.running or ctx.heimdex.reembedding() is not None,
    }


def results_json(hits: list, took_ms: float, **request: object) -> dict:
    """A page of hits after what was asked (query or scene, limit, offset...), as every search returns it."""
    return {**request, "took_ms": round(took_ms, 1), "hits": [hit_json(h) for h in hits]}
