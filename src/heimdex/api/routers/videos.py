"""Videos: streamed upload, list, detail, delete, reprocess, playback with Range, thumbnails."""

from __future__ import annotations

import mimetypes
import secrets
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.errors import ApiError
from heimdex.api.uploads import receive_files
from heimdex.api.views import owned_scene, scene_json, stages_json, video_json
from heimdex.domain import VideoState
from heimdex.errors import ConflictError, NotFoundError
from heimdex.logging import get_logger
from heimdex.service import VIDEO_SUFFIXES

log = get_logger(__name__)
router = APIRouter(prefix="/videos", tags=["videos"])


class VideoSort(StrEnum):
    created = "created"
    name = "name"
    size = "size"
    duration = "duration"
    state = "state"


def _size_text(n: int) -> str:
    return f"{n / 1024**3:.1f} GB" if n >= 1024**3 else f"{n / 1024**2:.0f} MB"


def _upload_limit(ctx, user) -> tuple[int, str]:
    settings = ctx.settings
    limit = settings.upload_max_bytes
    message = f"the file is larger than the upload limit of {_size_text(limit)}"
    if settings.user_quota_bytes:
        used = sum(v.size_bytes for v in ctx.heimdex.videos(user.id))
        remaining = max(0, settings.user_quota_bytes - used)
        if remaining < limit:
            limit = remaining
            message = f"the upload would pass your storage quota of {_size_text(settings.user_quota_bytes)}"
    return limit, message


@router.post(
    "",
    status_code=201,
    summary="Upload videos (multipart/form-data, field `file`, several allowed)",
    responses={413: {"description": "past the size limit or quota"}},
)
async def upload(request: Request, user: CurrentUser, ctx: Ctx) -> JSONResponse:
    if ctx.upload_limiter is not None:
        ctx.upload_limiter.hit(user.id, "uploads")
    limit, message = _upload_limit(ctx, user)
    files = await receive_files(request, ctx.settings.home / "uploads", limit, message)
    try:
        if not files:
            raise ApiError(400, "no file in the upload: send it in a multipart field named `file`")
        for f in files:
            if _suffix(f.filename) not in VIDEO_SUFFIXES:
                raise ApiError(
                    415, f"{f.filename}: not a video file name (expected one of .mp4, .mov, .mkv, .webm, ...)"
                )
        results = [_register(ctx, user, f.path, f.filename) for f in files]
    finally:
        for f in files:
            f.path.unlink(missing_ok=True)  # the blob store kept its own link or copy
    created = any(is_new for _, is_new in results)
    body = {"videos": [{**v, "created": is_new} for v, is_new in results]}
    return JSONResponse(body, status_code=201 if created else 200)


def _suffix(filename: str) -> str:
    return filename[filename.rfind(".") :].lower() if "." in filename else ""


def _register(ctx, user, path, filename: str) -> tuple[dict, bool]:
    # the temporary name has no suffix, and add_file names the kept original after it
    named = path.with_name(path.name + _suffix(filename))
    path.rename(named)
    try:
        added = ctx.heimdex.add_file(named, owner_id=user.id, filename=filename)
    finally:
        named.unlink(missing_ok=True)
    video = added.video
    if added.is_new or video.state == VideoState.FAILED:
        if not added.is_new:
            ctx.heimdex.reprocess(video.id, user.id)  # the same file again after a failure: try again
        ctx.queue.enqueue(video.id)
        log.info("video.uploaded", video_id=video.id, owner=user.id, bytes=video.size_bytes)
    return video_json(ctx, ctx.heimdex.video(video.id, user.id)), added.is_new


class PresignRequest(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size_bytes: int = Field(gt=0, description="The file's exact size: the store refuses anything larger.")
    content_type: str = Field("application/octet-stream", max_length=100)


class UploadedRequest(BaseModel):
    key: str = Field(min_length=1, max_length=500)
    filename: str = Field(min_length=1, max_length=255)


@router.post(
    "/presign",
    summary="Direct upload to object storage: a presigned POST (s3:// storage only)",
    responses={400: {"description": "local storage: use POST /videos"}, 413: {"description": "too large"}},
)
def presign(body: PresignRequest, user: CurrentUser, ctx: Ctx) -> dict:
    """Step 1 of a direct upload: POST the file as multipart/form-data to `url` with `fields` (the file
    last, in a field named `file`), then call POST /videos/uploaded with the `key`."""
    if _suffix(body.filename) not in VIDEO_SUFFIXES:
        raise ApiError(415, f"{body.filename}: not a video file name (expected one of .mp4, .mov, .mkv, ...)")
    limit, message = _upload_limit(ctx, user)
    if body.size_bytes > limit:
        raise ApiError(413, message)
    if ctx.upload_limiter is not None:
        ctx.upload_limiter.hit(user.id, "uploads")
    key = f"uploads/{user.id}/{secrets.token_hex(12)}/original{_suffix(body.filename)}"
    post = ctx.heimdex.blobs.presigned_upload(key, body.content_type, body.size_bytes)
    if post is None:
        raise ApiError(
            400,
            "direct uploads need object storage (HEIMDEX_STORAGE_URL=s3://...); "
            "upload to POST /videos instead",
        )
    return {"key": key, "url": post["url"], "fields": post["fields"], "complete": "/videos/uploaded"}


@router.post("/uploaded", status_code=201, summary="Step 2 of a direct upload: index what was uploaded")
def uploaded(body: UploadedRequest, user: CurrentUser, ctx: Ctx) -> dict:
    if not body.key.startswith(f"uploads/{user.id}/") or ".." in body.key:
        raise ApiError(404, "no upload of yours at that key")
    if _suffix(body.filename) not in VIDEO_SUFFIXES:
        raise ApiError(415, f"{body.filename}: not a video file name (expected one of .mp4, .mov, .mkv, ...)")
    try:
        video = ctx.heimdex.add_uploaded(body.key, user.id, body.filename)
    except NotFoundError as exc:
        raise ApiError(404, f"{exc}: POST the file to the presigned URL first") from exc
    ctx.queue.enqueue(video.id)
    log.info("video.uploaded_direct", video_id=video.id, owner=user.id, bytes=video.size_bytes)
    return video_json(ctx, ctx.heimdex.video(video.id, user.id))


@router.get("", summary="Your videos with state, progress and thumbnail; filter and sort")
def list_videos(
    user: CurrentUser,
    ctx: Ctx,
    state: VideoState | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Part of the file name")] = None,
    sort: VideoSort = VideoSort.created,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    videos = ctx.heimdex.store.list_videos(user.id, state)
    if q:
        videos = [v for v in videos if q.lower() in v.filename.lower()]
    keys = {
        VideoSort.created: lambda v: v.created_at,
        VideoSort.name: lambda v: v.filename.lower(),
        VideoSort.size: lambda v: v.size_bytes,
        VideoSort.state: lambda v: v.state.value,
        VideoSort.duration: lambda v: v.info.duration_s if v.info else 0.0,
    }
    videos.sort(key=keys[sort], reverse=order == "desc")
    page = videos[offset : offset + limit]
    return {
        "total": len(videos),
        "limit": limit,
        "offset": offset,
        "videos": [video_json(ctx, v) for v in page],
    }


@router.get("/{video_id}", summary="One video with its stages, progress and errors")
def get_video(video_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    video = ctx.heimdex.video(video_id, user.id)
    return {**video_json(ctx, video), "stages": stages_json(ctx, video.id)}


@router.get("/{video_id}/scenes", summary="The video's scenes")
def video_scenes(
    video_id: str,
    user: CurrentUser,
    ctx: Ctx,
    words: Annotated[bool, Query(description="Include word timings")] = False,
) -> list[dict]:
    video = ctx.heimdex.video(video_id, user.id)
    return [scene_json(s, with_words=words) for s in ctx.heimdex.store.list_scenes(video.id)]


@router.delete("/{video_id}", status_code=204, summary="Delete the video and everything derived from it")
def delete_video(video_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    if ctx.worker.current == video.id:
        # The pipeline cannot be interrupted safely mid-stage: delete as soon as it finishes.
        with ctx.deferred.lock:
            ctx.deferred.deletes[video.id] = lambda: _delete(ctx, video.id, user.id)
        if ctx.worker.current == video.id:
            return Response(status_code=202)
        with ctx.deferred.lock:  # the job ended in between
            ctx.deferred.deletes.pop(video.id, None)
    _delete(ctx, video.id, user.id)
    return Response(status_code=204)


def _delete(ctx, video_id: str, owner_id: str) -> None:
    try:
        ctx.heimdex.delete_video(video_id, owner_id)
    except NotFoundError:
        return
    ctx.progress.forget(video_id)
    log.info("video.deleted", video_id=video_id, owner=owner_id)


@router.post("/{video_id}/reprocess", status_code=202, summary="Index the video again from scratch")
def reprocess(video_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    video = ctx.heimdex.video(video_id, user.id)
    if ctx.worker.current == video.id:
        raise ConflictError("the video is being indexed right now; reprocess it when that finishes")
    ctx.heimdex.reprocess(video.id, user.id)
    ctx.queue.enqueue(video.id)
    return video_json(ctx, ctx.heimdex.video(video.id, user.id))


@router.get("/{video_id}/stream", summary="The original file, with HTTP Range support (206) for seeking")
def stream(video_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    blobs = ctx.heimdex.blobs
    direct = blobs.url(video.original_key)
    if direct:  # object storage: the browser fetches (and seeks in) the file there, with a short-lived URL
        return RedirectResponse(direct, status_code=307)
    path = blobs.path(video.original_key)  # type: ignore[attr-defined]
    if not path.is_file():
        raise NotFoundError("the original file is missing")
    media_type = mimetypes.guess_type(video.filename)[0] or "application/octet-stream"
    if media_type == "video/quicktime":
        media_type = "video/mp4"  # browsers play most .mov files only when told they are mp4
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/{video_id}/thumbnail", summary="The thumbnail of the video's first scene (WebP)")
def video_thumbnail(video_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    scenes = [s for s in ctx.heimdex.store.list_scenes(video.id) if s.thumbnail_key]
    if not scenes:
        raise NotFoundError("the video has no thumbnail yet")
    return thumbnail_response(ctx, owned_scene(ctx, scenes[0].id, user.id).thumbnail_key)


def thumbnail_response(ctx, key: str | None) -> Response:
    if not key or not ctx.heimdex.blobs.exists(key):
        raise NotFoundError("no thumbnail")
    return Response(
        ctx.heimdex.blobs.get_bytes(key),
        media_type="image/webp",
        headers={"Cache-Control": "private, max-age=600"},
    )
