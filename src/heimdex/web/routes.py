"""Web pages. Each page renders its data on the server; app.js adds uploads, live progress,
the player's transcript and the buttons that call the API."""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from heimdex import __version__
from heimdex.api.deps import ACCESS_COOKIE, Ctx, CurrentUser, PageUser
from heimdex.api.errors import error_status
from heimdex.api.routers.faces import face_json
from heimdex.api.routers.people import match_json, person_json
from heimdex.api.routers.search import MinConfidence, receive_photo, run_search
from heimdex.api.routers.unnamed import group_json
from heimdex.api.views import edit_json, hit_json, scene_json, stages_json, transcript_lines, video_json
from heimdex.errors import HeimdexError, NotFoundError
from heimdex.units import size_text

router = APIRouter(include_in_schema=False)
RESULTS = 30  # hits on the search page
UNGROUPED_SHOWN = 48  # faces in no group on the people page (all of them: GET /faces/ungrouped)
templates = Jinja2Templates(directory=str(files("heimdex.web").joinpath("templates")))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# Names of the languages Whisper most often reports, for the captions menu; others show their code.
LANGUAGE_NAMES = {
    "en": "English", "ko": "Korean", "ja": "Japanese", "zh": "Chinese", "de": "German", "fr": "French",
    "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch", "da": "Danish", "sv": "Swedish",
    "no": "Norwegian", "fi": "Finnish", "pl": "Polish", "ru": "Russian", "uk": "Ukrainian", "tr": "Turkish",
    "ar": "Arabic", "hi": "Hindi",
}  # fmt: skip


def language(code: str | None) -> str:
    return "Transcript" if not code else f"Transcript ({LANGUAGE_NAMES.get(code, code)})"


templates.env.filters["clock"] = clock
templates.env.filters["size"] = size_text
templates.env.filters["language"] = language
templates.env.globals["version"] = __version__


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


@router.get("/")
def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/app" if request.cookies.get(ACCESS_COOKIE) else "/login", status_code=303)


# Where a login may send the browser next: a path on this site. Browsers parse URLs the WHATWG way:
# they drop tabs and newlines anywhere and read a backslash as "/", so "/\evil.example" and
# "/<tab>/evil.example" are "//evil.example", another site. Accepted: "/" then anything but "/" or a
# backslash, and no control character or backslash anywhere (nothing a browser strips or turns into "/").
SAFE_NEXT = re.compile(r"/(?![/\\])[^\x00-\x1f\x7f\\]*")


def safe_next(next_url: str | None, default: str = "/app") -> str:
    return next_url if next_url and SAFE_NEXT.fullmatch(next_url) else default


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, ctx: Ctx, next: str = "/app") -> HTMLResponse:
    return render(
        request,
        "login.html",
        mode="login",
        next=safe_next(next),
        allow_registration=ctx.settings.allow_registration,
    )


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, ctx: Ctx) -> HTMLResponse:
    return render(
        request,
        "login.html",
        mode="register",
        next="/app",
        allow_registration=ctx.settings.allow_registration,
    )


@router.get("/app", response_class=HTMLResponse)
def library(request: Request, user: PageUser, ctx: Ctx) -> HTMLResponse:
    videos = sorted(ctx.heimdex.videos(user.id), key=lambda v: -v.created_at)
    return render(
        request,
        "library.html",
        user=user,
        page="library",
        videos=[video_json(ctx, v) for v in videos],
        max_upload=ctx.settings.upload_max_bytes,
    )


@router.get("/app/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    user: PageUser,
    ctx: Ctx,
    q: Annotated[str, Query(max_length=1000)] = "",
    person: Annotated[str | None, Query(max_length=200)] = None,
    like: Annotated[str | None, Query(max_length=200, description="More like this scene")] = None,
    min_confidence: MinConfidence = MinConfidence.auto,
) -> HTMLResponse:
    hits, took_ms, error, example = [], 0.0, None, None
    if q.strip() or person or like:
        try:
            if like:
                example = scene_json(ctx.heimdex.scene(user.id, like), with_words=False)
            found, took_ms = run_search(
                ctx,
                user.id,
                q,
                limit=RESULTS,
                people=(person,) if person else (),
                min_confidence=min_confidence,
                like=like,
            )
            hits = [hit_json(h) for h in found]
        except HeimdexError as exc:
            error = str(exc)
    return render(
        request,
        "search.html",
        user=user,
        page="search",
        q=q,
        hits=hits,
        took_ms=took_ms,
        error=error,
        searched=bool(q.strip() or person or like),
        example=example,
        min_confidence=min_confidence.value,
        people=[p.name for p in ctx.heimdex.people(user.id)],
        scene_count=ctx.heimdex.scene_count(user.id),
    )


@router.post("/app/search/image", response_class=HTMLResponse)
async def search_image_results(
    request: Request, user: CurrentUser, ctx: Ctx, min_confidence: MinConfidence = MinConfidence.auto
) -> HTMLResponse:
    """The results of a search by a dropped photo, as the search page's results fragment (app.js
    puts it in place); a bad photo is the fragment with its reason, and the API's 4xx status."""
    hits, took_ms, error, status = [], 0.0, None, 200
    try:
        photo = await receive_photo(request, ctx)
        search = functools.partial(
            run_search, ctx, user.id, "", limit=RESULTS, min_confidence=min_confidence, image=photo
        )
        found, took_ms = await run_in_threadpool(search)
        hits = [hit_json(h) for h in found]
    except HeimdexError as exc:
        error, status = str(exc), error_status(exc)
    context = {"hits": hits, "took_ms": took_ms, "error": error, "searched": True, "q": "", "by_photo": True}
    return render(request, "_results.html", status, **context)


@router.get("/app/watch/{video_id}", response_class=HTMLResponse)
def watch(
    request: Request,
    video_id: str,
    user: PageUser,
    ctx: Ctx,
    t: Annotated[float, Query(ge=0)] = 0.0,
    q: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    try:
        video = ctx.heimdex.video(video_id, user.id)
    except NotFoundError:
        return render(request, "missing.html", 404, user=user, page="", what="video")
    scenes = ctx.heimdex.scenes(user.id, video.id)
    sections = [
        {"scene": scene_json(s, with_words=False), "lines": transcript_lines(s.words)} for s in scenes
    ]
    markers, error = _hits_in_video(ctx, user.id, video.id, q)
    edits = {e.id: edit_json(e) for e in ctx.heimdex.transcript_edits(user.id, video.id)}
    return render(
        request,
        "watch.html",
        edits=edits,
        user=user,
        page="library",
        video=video_json(ctx, video),
        start=t,
        sections=sections,
        stages=stages_json(ctx, video),
        q=q,
        in_video=in_video_query(video.id, q) if q.strip() else "",
        markers=markers,
        error=error,
    )


def in_video_query(video_id: str, q: str) -> str:
    """The watch page's "search in this video" as a search of the whole library would spell it: the
    same query, and the same link to the search page's list of its hits."""
    return f"video:{video_id} {q.strip()}"


def _hits_in_video(ctx, owner_id: str, video_id: str, q: str) -> tuple[list[dict], str | None]:
    """The query's hits in one video, in time order: the player's timeline markers."""
    if not q.strip():
        return [], None
    try:
        found, _ = run_search(ctx, owner_id, in_video_query(video_id, q), all_scenes=True, limit=100)
    except HeimdexError as exc:
        return [], str(exc)
    # A video: term typed in the box adds that video (the terms are ORed): the timeline is this one's.
    mine = (hit_json(h) for h in found if h.video_id == video_id)
    return sorted(mine, key=lambda h: h["start_s"]), None


@router.get("/app/people", response_class=HTMLResponse)
def people_page(request: Request, user: PageUser, ctx: Ctx) -> HTMLResponse:
    people = [person_json(p) for p in ctx.heimdex.people(user.id)]
    every = [group_json(g) for g in ctx.heimdex.face_groups(user.id, named=True)]  # largest first
    ungrouped = [face_json(f) for f in ctx.heimdex.ungrouped_faces(user.id)]
    return render(
        request,
        "people.html",
        user=user,
        page="people",
        people=people,
        groups=[g for g in every if g["person_id"] is None],
        faces=face_avatars(every),
        ungrouped=ungrouped[:UNGROUPED_SHOWN],
        ungrouped_total=len(ungrouped),
    )


def face_avatars(groups: list[dict]) -> dict[str, str]:
    """Person id -> the best face crop of their largest group: the picture of someone named from
    their faces, who has no enrolled photo."""
    avatars: dict[str, str] = {}
    for group in groups:
        crops = [f["crop"] for f in group["best_faces"] if f["crop"]]
        if group["person_id"] and crops:
            avatars.setdefault(group["person_id"], crops[0])
    return avatars


@router.get("/app/people/{person_id}", response_class=HTMLResponse)
def person_page(request: Request, person_id: str, user: PageUser, ctx: Ctx) -> Response:
    try:
        person = ctx.heimdex.person(user.id, person_id)
    except NotFoundError:
        return render(request, "missing.html", 404, user=user, page="", what="person")
    hits, _ = run_search(ctx, user.id, "", people=(person.id,), limit=60, all_scenes=True)
    # To review: one card per scene (its nearest face first), judging every possible face in it.
    # Sure: the faces of each scene that count as the person, for its "Not <name>" button. The
    # person filter of a search also finds possible matches: those scenes are in the review only.
    review: dict[str, dict] = {}
    sure: dict[str, list[int]] = {}
    for match in ctx.heimdex.person_matches(person.id, user.id):  # nearest first
        if match.to_review:
            view = match_json(person, match)
            card = review.setdefault(match.scene_id, {**view, "faces": [], "crops": []})
            card["faces"].append(match.face_pk)
            if view["crop"]:  # which face of the scene it is
                card["crops"].append(view["crop"])
        elif match.verdict != "rejected":
            sure.setdefault(match.scene_id, []).append(match.face_pk)
    return render(
        request,
        "person.html",
        user=user,
        page="people",
        person=person_json(person),
        hits=[hit_json(h) for h in hits if h.scene_id in sure],
        review=list(review.values()),
        sure_faces=sure,
    )


@router.get("/app/account", response_class=HTMLResponse)
def account_page(request: Request, user: PageUser, ctx: Ctx) -> HTMLResponse:
    tokens = ctx.accounts.api_tokens(user)
    return render(request, "account.html", user=user, page="account", tokens=tokens)
