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
from heimdex.api.views import hit_json
from heimdex.domain import SearchHit

router = APIRouter(tags=["search"])
DATE_SORT_POOL = 200  # date order re-sorts this many of the best hits


class SearchSort(StrEnum):
    relevance = "relevance"
    date = "date"


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
    per_video: int | None = -1,
) -> tuple[list[SearchHit], float]:
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
        people=people,
        video_ids=videos,
        created_from=created_from,
        created_to=created_to,
    )
    hits = result.hits
    if by_date:
        created = {v.id: v.created_at for v in ctx.heimdex.videos(owner_id)}
        hits = sorted(hits, key=lambda h: (-created.get(h.video_id, 0.0), h.start_s))[offset : offset + limit]
    elapsed = time.perf_counter() - started
    ctx.metrics.search_latency.observe(elapsed)
    return hits, elapsed * 1000


@router.get("/search", summary="Search your scenes")
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
        per_video=per_video or -1,
    )
    return {
        "query": q,
        "limit": limit,
        "offset": offset,
        "sort": sort.value,
        "took_ms": round(took_ms, 1),
        "hits": [hit_json(h) for h in hits],
    }
