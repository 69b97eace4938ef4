"""Search: the `heimdex search --json` hit shape, plus links to play each scene."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from heimdex.api.context import AppContext
from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.errors import ApiError
from heimdex.api.openapi import USER, errors
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
) -> tuple[list[SearchHit], float]:
    """per_video None: the setting; all_scenes: no per-video cap (see Heimdex.search)."""
    check_text(q, "the query (q)", allow_whitespace=True)  # the URL guard refuses these first
    if not q.strip() and not people:
        raise ApiError(400, "give a query (q) or a person")
    started = time.perf_counter()
    by_date = sort == SearchSort.date
    result = ctx.heimdex.search(
        q,
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
    return {
        "query": q,
        "limit": limit,
        "offset": offset,
        "sort": sort.value,
        "took_ms": round(took_ms, 1),
        "hits": [hit_json(h) for h in hits],
    }
