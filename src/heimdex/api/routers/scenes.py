"""Scenes: transcript words with times, on-screen text, tags, people; thumbnails."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.exports import clip_response
from heimdex.api.openapi import USER, binary, errors
from heimdex.api.routers.videos import CLIP_HEADERS, thumbnail_response
from heimdex.api.views import scene_json, transcript_lines

router = APIRouter(prefix="/scenes", tags=["scenes"], responses=USER)


@router.get(
    "/{scene_id}",
    summary="A scene: transcript words and times, on-screen text, tags, people",
    responses=errors(404),
)
def get_scene(scene_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    scene = ctx.heimdex.scene(user.id, scene_id)
    video = ctx.heimdex.video(scene.video_id, user.id)
    return {**scene_json(scene), "filename": video.filename, "lines": transcript_lines(scene.words)}


@router.get(
    "/{scene_id}/clip.mp4",
    summary="An MP4 of the scene (copied from its last keyframe, or exact)",
    response_class=Response,
    responses={200: {**binary("The clip", "video/mp4"), "headers": CLIP_HEADERS}, **errors(404, 409, 422)},
)
def scene_clip(
    scene_id: str,
    user: CurrentUser,
    ctx: Ctx,
    exact: Annotated[bool, Query(description="Encode again to start within one frame")] = False,
) -> Response:
    scene = ctx.heimdex.scene(user.id, scene_id)
    video = ctx.heimdex.video(scene.video_id, user.id)
    return clip_response(
        ctx.settings.home,
        video.filename,
        lambda out: ctx.heimdex.scene_clip(user.id, scene.id, out, exact=exact),
    )


@router.get(
    "/{scene_id}/thumbnail",
    summary="The scene's thumbnail (WebP)",
    response_class=Response,
    responses={200: binary("The thumbnail", "image/webp"), **errors(404)},
)
def scene_thumbnail(scene_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    return thumbnail_response(ctx, ctx.heimdex.scene(user.id, scene_id).thumbnail_key)
