"""Accounts administration: list and delete users (administrators only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam
from fastapi.responses import Response

from heimdex.accounts import User
from heimdex.accounts.deletion import delete_account
from heimdex.accounts.service import ForbiddenError
from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.openapi import USER, errors
from heimdex.errors import NotFoundError
from heimdex.logging import get_logger

log = get_logger(__name__)
router = APIRouter(prefix="/users", tags=["accounts"], responses=USER)


def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise ForbiddenError("only administrators can manage users")
    return user


Admin = Annotated[User, Depends(admin_user)]


def user_json(user: User) -> dict:
    return {"id": user.id, "email": user.email, "is_admin": user.is_admin, "created_at": user.created_at}


@router.get("", summary="Every account on this server (administrators only)")
def list_users(admin: Admin, ctx: Ctx) -> list[dict]:
    return [user_json(u) for u in ctx.accounts.users()]


@router.delete(
    "/{user_id}",
    status_code=204,
    summary="Delete an account with its videos, people and tokens (administrators only)",
    responses={
        202: {"description": "deleted, but a video being indexed goes when its job ends"},
        **errors(404, 409, _409="the only administrator"),
    },
)
def delete_user(user_id: Annotated[str, PathParam(max_length=64)], admin: Admin, ctx: Ctx) -> Response:
    user = ctx.accounts.user(user_id)  # 404 when unknown
    result = delete_account(
        ctx.accounts, ctx.heimdex, user, delete_video=lambda video_id: _delete_video(ctx, video_id, user.id)
    )
    log.info("user.deleted_by_admin", user_id=user.id, admin=admin.id)
    return Response(status_code=202 if result.deferred_videos else 204)


def _delete_video(ctx, video_id: str, owner_id: str) -> bool:
    """Delete now, or, while the worker is indexing the video, when its job ends (as DELETE
    /videos/{id} does). True when it is gone now."""
    if ctx.worker.current == video_id:
        with ctx.deferred.lock:
            ctx.deferred.deletes[video_id] = lambda: _delete_now(ctx, video_id, owner_id)
        if ctx.worker.current == video_id:
            return False
        with ctx.deferred.lock:  # the job ended in between
            ctx.deferred.deletes.pop(video_id, None)
    _delete_now(ctx, video_id, owner_id)
    return True


def _delete_now(ctx, video_id: str, owner_id: str) -> None:
    try:
        ctx.heimdex.delete_video(video_id, owner_id)
    except NotFoundError:
        return
    ctx.progress.forget(video_id)
