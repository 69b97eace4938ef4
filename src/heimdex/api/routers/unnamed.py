"""Unnamed people: the faces of your videos clustered into people nobody enrolled; name, merge, move a
face out, hide."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.openapi import USER, binary, errors
from heimdex.api.routers.faces import face_json
from heimdex.api.routers.people import PersonBody, _clean_name, person_json
from heimdex.domain import ClusterFace, FaceCluster

router = APIRouter(prefix="/unnamed-people", tags=["people"], responses=USER)
FacePk = Annotated[int, Path(ge=1, le=2**62, description="the face, as `face` in a group's faces")]


class MergeBody(BaseModel):
    into: str = Field(min_length=1, max_length=64, description="the group that takes this one's faces")


class MoveBody(BaseModel):
    to: str | None = Field(
        None, min_length=1, max_length=64, description="the group the face goes to; null: one of its own"
    )


class HiddenBody(BaseModel):
    hidden: bool


def group_json(group: FaceCluster, faces: list[ClusterFace] | None = None) -> dict:
    return {
        "id": group.id,
        "person_id": group.person_id,
        "person_name": group.person_name,
        "hidden": group.hidden,
        "face_count": group.face_count,
        "scene_count": group.scene_count,
        "best_faces": [face_json(f) for f in group.best_faces],
        **({"faces": [face_json(f) for f in faces]} if faces is not None else {}),
        "links": {
            "self": f"/unnamed-people/{group.id}",
            "name": f"/unnamed-people/{group.id}/name",
            "merge": f"/unnamed-people/{group.id}/merge",
            "hidden": f"/unnamed-people/{group.id}/hidden",
        },
    }


@router.get("", summary="Unnamed people, largest first, with their best face crops")
def list_groups(
    user: CurrentUser,
    ctx: Ctx,
    named: Annotated[bool, Query(description="also the groups already named")] = False,
    hidden: Annotated[bool, Query(description="also the hidden groups")] = False,
) -> list[dict]:
    return [group_json(g) for g in ctx.heimdex.face_groups(user.id, named=named, hidden=hidden)]


@router.post("/cluster", summary="Cluster faces not in a group yet (indexing does it for each video)")
def cluster(user: CurrentUser, ctx: Ctx) -> dict:
    return {"new_groups": ctx.heimdex.cluster_faces(user.id)}


@router.get("/{group_id}", summary="One group with all its faces", responses=errors(404))
def get_group(group_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    group = ctx.heimdex.face_group(group_id, user.id)
    return group_json(group, ctx.heimdex.face_group_faces(group.id, user.id))


@router.get(
    "/{group_id}/faces/{face}/crop",
    summary="A face's crop, if it is in this group (as GET /faces/{face}/crop)",
    response_class=Response,
    responses={200: binary("The crop", "image/jpeg"), **errors(404)},
)
def face_crop(group_id: str, face: FacePk, user: CurrentUser, ctx: Ctx) -> Response:
    data = ctx.heimdex.face_crop(group_id, face, user.id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})


@router.post(
    "/{group_id}/name",
    summary="Name the group: it becomes (or joins) the person of that name, found in search at once",
    responses=errors(404),
)
def name_group(group_id: str, body: PersonBody, user: CurrentUser, ctx: Ctx) -> dict:
    return person_json(ctx.heimdex.name_group(group_id, _clean_name(body.name), user.id))


@router.post(
    "/{group_id}/merge",
    summary="Merge this group into another (the same person; if both are named, so are the people)",
    responses=errors(404),
)
def merge_group(group_id: str, body: MergeBody, user: CurrentUser, ctx: Ctx) -> dict:
    return group_json(ctx.heimdex.merge_groups(group_id, body.into, user.id))


@router.post(
    "/{group_id}/faces/{face}/move",
    summary="Move a wrongly grouped face out (to another group, or one of its own)",
    responses=errors(404),
)
def move_face(group_id: str, face: FacePk, body: MoveBody, user: CurrentUser, ctx: Ctx) -> dict:
    return {"face": face, "group": ctx.heimdex.move_face(group_id, face, body.to, user.id)}


@router.put("/{group_id}/hidden", summary="Hide (or show again) a group", responses=errors(404))
def hide_group(group_id: str, body: HiddenBody, user: CurrentUser, ctx: Ctx) -> dict:
    return group_json(ctx.heimdex.hide_group(group_id, body.hidden, user.id))
