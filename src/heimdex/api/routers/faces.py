"""Faces one by one: those in no group (too small or blurred to start one, and near none), any face's
crop, and putting a face with the person or group it belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.openapi import USER, binary, errors
from heimdex.domain import ClusterFace

router = APIRouter(prefix="/faces", tags=["people"], responses=USER)
FacePk = Annotated[int, Path(ge=1, le=2**62, description="the face, as `face` in a listing of faces")]


class AssignBody(BaseModel):
    group: str | None = Field(None, min_length=1, max_length=64, description="the group the face joins")
    person: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="the person (id) the face is: it joins their largest group, or a new one of theirs",
    )


def face_json(face: ClusterFace) -> dict:
    """One face, where it was seen and how to act on it (the same shape in groups and out of them)."""
    t = round(face.t_s, 3)
    links = {"assign": f"/faces/{face.face_pk}/assign", "play": f"/app/watch/{face.video_id}?t={t}"}
    if face.cluster_id is not None:
        links["move"] = f"/unnamed-people/{face.cluster_id}/faces/{face.face_pk}/move"
    return {
        "face": face.face_pk,
        "group": face.cluster_id,
        "video_id": face.video_id,
        "filename": face.filename,
        "scene_id": face.scene_id,
        "scene_index": face.scene_index,
        "t_s": t,
        "size_px": face.size_px,
        "sharpness": face.sharpness,
        "crop": f"/faces/{face.face_pk}/crop" if face.crop_key else None,
        "links": links,
    }


@router.get("/ungrouped", summary="Faces in no group (too small or blurred to start one), largest first")
def ungrouped(
    user: CurrentUser,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    faces = ctx.heimdex.ungrouped_faces(user.id)
    return {"total": len(faces), "faces": [face_json(f) for f in faces[offset : offset + limit]]}


@router.get(
    "/{face}/crop",
    summary="A face's crop",
    response_class=Response,
    responses={200: binary("The crop", "image/jpeg"), **errors(404)},
)
def face_crop(face: FacePk, user: CurrentUser, ctx: Ctx) -> Response:
    data = ctx.heimdex.face_image(face, user.id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


@router.post(
    "/{face}/assign",
    summary="Put a face with a person or in a group (neither: a group of its own)",
    responses=errors(404),
)
def assign(face: FacePk, body: AssignBody, user: CurrentUser, ctx: Ctx) -> dict:
    group = ctx.heimdex.assign_face(face, user.id, group_id=body.group, person=body.person)
    return {"face": face, "group": group}
