"""Highlight reels: several scenes compiled into one MP4, made in the background with progress."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.exports import attachment
from heimdex.api.openapi import USER, binary, errors
from heimdex.reels import MAX_SCENES, Reel

router = APIRouter(prefix="/reels", tags=["reels"], responses=USER)


class ReelRequest(BaseModel):
    scene_ids: list[str] = Field(min_length=1, max_length=MAX_SCENES, description="The scenes, in reel order")
    fade: bool = Field(True, description="Fade each scene in from black and out to black (else hard cuts)")


def reel_json(reel: Reel) -> dict:
    data = reel.model_dump(mode="json", exclude={"owner_id", "updated_at"})
    data["links"] = {"self": f"/reels/{reel.id}", "file": f"/reels/{reel.id}/file"}
    return data


@router.post(
    "",
    status_code=202,
    summary="Start a highlight reel of several scenes; poll it, then download it",
    responses=errors(404, 422),
)
def start_reel(body: ReelRequest, user: CurrentUser, ctx: Ctx) -> dict:
    return reel_json(ctx.reels.start(user.id, body.scene_ids, fade=body.fade))


@router.get("/{reel_id}", summary="A reel's job: state, progress, length, error", responses=errors(404))
def get_reel(reel_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    return reel_json(ctx.reels.get(user.id, reel_id))


@router.get(
    "/{reel_id}/file",
    summary="The reel (MP4), once done",
    response_class=Response,
    responses={200: binary("The reel", "video/mp4"), **errors(404)},
)
def reel_file(reel_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    key = ctx.reels.file_key(user.id, reel_id)
    blobs = ctx.heimdex.blobs
    direct = blobs.url(key)
    if direct:  # object storage: the browser fetches it there, with a short-lived URL
        return RedirectResponse(direct, status_code=307)
    return FileResponse(
        blobs.path(key),  # type: ignore[attr-defined]
        media_type="video/mp4",
        headers={"Content-Disposition": attachment(f"heimdex reel {reel_id}.mp4")},
    )
