"""People: create, list, rename, delete, enrol photos, and the scenes where each appears."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.errors import ApiError
from heimdex.api.openapi import USER, binary, errors, multipart_files
from heimdex.api.routers.search import run_search
from heimdex.api.uploads import Limit, receive_files
from heimdex.api.views import hit_json
from heimdex.blobs.keys import person_photo_key
from heimdex.domain import Person
from heimdex.store import MatchView
from heimdex.validation import CleanFreeText

router = APIRouter(prefix="/people", tags=["people"], responses=USER)
MAX_PHOTO_BYTES = 20 * 1024 * 1024
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


class PersonBody(BaseModel):
    name: CleanFreeText = Field(min_length=1, max_length=200)


class MergeBody(BaseModel):
    into: str = Field(
        min_length=1, max_length=64, description="the person (id) who stays, with their name, and takes these"
    )


class VerdictBody(BaseModel):
    verdict: Literal["confirmed", "rejected"] | None = Field(
        description="confirmed: the face is this person; rejected: it is not; null: let the matcher decide"
    )


def match_json(person: Person, match: MatchView) -> dict:
    t = round(match.t_s, 3)
    return {
        "face": match.face_pk,
        "video_id": match.video_id,
        "filename": match.filename,
        "scene_id": match.scene_id,
        "scene_index": match.scene_index,
        "t_s": t,
        "distance": round(match.distance, 4),
        "possible": match.possible,
        "verdict": match.verdict,
        "thumbnail": f"/scenes/{match.scene_id}/thumbnail" if match.thumbnail_key else None,
        "crop": f"/faces/{match.face_pk}/crop" if match.crop_key else None,
        "links": {
            "self": f"/people/{person.id}/matches/{match.face_pk}",
            "play": f"/app/watch/{match.video_id}?t={t}",
        },
    }


def person_json(person: Person) -> dict:
    data = person.model_dump(mode="json", exclude={"owner_id"})
    data["photo"] = f"/people/{person.id}/photo" if person.photo_count else None
    data["links"] = {
        "self": f"/people/{person.id}",
        "scenes": f"/people/{person.id}/scenes",
        "matches": f"/people/{person.id}/matches",
        "page": f"/app/people/{person.id}",
    }
    return data


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise ApiError(400, "the name is empty")
    return name


@router.post(
    "",
    status_code=201,
    summary="Create a person (add photos to find them in videos)",
    responses=errors(409, _409="you already have a person of that name"),
)
def create_person(body: PersonBody, user: CurrentUser, ctx: Ctx) -> dict:
    return person_json(ctx.heimdex.add_person(user.id, _clean_name(body.name)))


@router.get("", summary="Your people")
def list_people(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return [person_json(p) for p in ctx.heimdex.people(user.id)]


@router.get("/{person_id}", summary="One person", responses=errors(404))
def get_person(person_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    return person_json(ctx.heimdex.person(user.id, person_id))


@router.patch(
    "/{person_id}",
    summary="Rename a person",
    responses=errors(404, 409, _409="you already have a person of that name"),
)
def rename_person(person_id: str, body: PersonBody, user: CurrentUser, ctx: Ctx) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    return person_json(ctx.heimdex.rename_person(person.id, _clean_name(body.name), user.id))


@router.delete(
    "/{person_id}",
    status_code=204,
    summary="Delete a person, their photos and face links",
    responses=errors(404),
)
def delete_person(person_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    person = ctx.heimdex.person(user.id, person_id)
    ctx.heimdex.remove_person(person.id, user.id)
    return Response(status_code=204)


@router.post(
    "/{person_id}/merge",
    summary="Merge this person into another (the same person): their photos and faces go to `into`",
    responses=errors(404),
)
def merge_person(person_id: str, body: MergeBody, user: CurrentUser, ctx: Ctx) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    into = ctx.heimdex.person(user.id, body.into)
    return person_json(ctx.heimdex.merge_people(person.id, into.id, user.id))


@router.post(
    "/{person_id}/photos",
    summary="Enrol photos (multipart, field `file`); finds them in your videos",
    responses=errors(404, 413, 415, _415="not multipart/form-data, or not a JPEG, PNG or WebP photo"),
    openapi_extra=multipart_files("The photos, each in a field named `file`."),
)
async def add_photos(person_id: str, request: Request, user: CurrentUser, ctx: Ctx) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    files = await receive_files(
        request,
        ctx.settings.home / "uploads",
        Limit(MAX_PHOTO_BYTES, f"a photo may be at most {MAX_PHOTO_BYTES // 1024**2} MB"),
    )
    try:
        if not files:
            raise ApiError(400, "no photo in the upload: send it in a multipart field named `file`")
        for f in files:
            if not f.filename.lower().endswith(PHOTO_SUFFIXES):
                raise ApiError(415, f"{f.filename}: send JPEG, PNG or WebP photos")
        photos = [f.path.read_bytes() for f in files]  # small, and the face model needs them whole
    finally:
        for f in files:
            f.path.unlink(missing_ok=True)
    # Enrolment runs the face model and re-matches every face: keep it off the event loop.
    from starlette.concurrency import run_in_threadpool

    updated = await run_in_threadpool(ctx.heimdex.enrol, person.id, photos, user.id)
    return person_json(updated)


@router.get(
    "/{person_id}/photo",
    summary="The person's first enrolled photo",
    response_class=Response,
    responses={200: binary("The photo", "image/jpeg", "image/png", "image/webp"), **errors(404)},
)
def person_photo(person_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    person = ctx.heimdex.person(user.id, person_id)
    key = person_photo_key(person.id, 0)
    if not ctx.heimdex.blobs.exists(key):
        raise ApiError(404, "no photo enrolled")
    data = ctx.heimdex.blobs.get_bytes(key)
    media = "image/png" if data[:4] == b"\x89PNG" else "image/webp" if data[8:12] == b"WEBP" else "image/jpeg"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=600"})


@router.get("/{person_id}/scenes", summary="Scenes where the person appears", responses=errors(404))
def person_scenes(
    person_id: str,
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    hits, took_ms = run_search(
        ctx, user.id, "", people=(person.id,), limit=limit, offset=offset, all_scenes=True
    )
    return {"person": person_json(person), "took_ms": round(took_ms, 1), "hits": [hit_json(h) for h in hits]}


@router.get(
    "/{person_id}/matches",
    summary="The faces linked to the person, nearest first (possible=true: only those to review)",
    responses=errors(404),
)
def person_matches(
    person_id: str,
    user: CurrentUser,
    ctx: Ctx,
    possible: Annotated[bool, Query(description="only possible matches, not yet judged")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    matches = ctx.heimdex.person_matches(person.id, user.id, possible_only=possible)
    return {
        "person": person_json(person),
        "total": len(matches),
        "matches": [match_json(person, m) for m in matches[offset : offset + limit]],
    }


@router.put(
    "/{person_id}/matches/{face}",
    summary="Confirm or reject that a face is the person (null: undo)",
    responses=errors(404, _404="no such person, or that face is not linked to them"),
)
def judge_match(
    person_id: str,
    face: Annotated[int, Path(ge=1, le=2**62, description="the face, as `face` in the matches list")],
    body: VerdictBody,
    user: CurrentUser,
    ctx: Ctx,
) -> dict:
    person = ctx.heimdex.person(user.id, person_id)
    return person_json(ctx.heimdex.judge_match(person.id, face, body.verdict, user.id))
