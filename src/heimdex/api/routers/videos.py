"""Videos: streamed upload, list, detail, delete, reprocess, playback with Range, thumbnails."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path, PurePath
from stat import S_ISREG
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, model_validator
from starlette.datastructures import Headers
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from heimdex.api.context import AppContext
from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.errors import ApiError, error_response
from heimdex.api.exports import attachment, clip_response
from heimdex.api.openapi import USER, binary, errors, multipart_files
from heimdex.api.uploads import Limit, receive_files
from heimdex.api.views import scene_json, stages_json, video_json
from heimdex.blobs.keys import upload_key, upload_prefix
from heimdex.domain import VideoState
from heimdex.errors import ConflictError, NotFoundError
from heimdex.logging import get_logger
from heimdex.service import VIDEO_SUFFIXES
from heimdex.units import size_text
from heimdex.validation import CleanText

if TYPE_CHECKING:
    from heimdex.media.clips import Clip

log = get_logger(__name__)
router = APIRouter(prefix="/videos", tags=["videos"], responses=USER)


class VideoSort(StrEnum):
    created = "created"
    name = "name"
    size = "size"
    duration = "duration"
    state = "state"


def _upload_limits(ctx, user) -> tuple[Limit, ...]:
    """The upload limit of each file and, with a quota, what all files of an upload may add up to."""
    settings = ctx.settings
    limits = [
        Limit(
            settings.upload_max_bytes,
            f"the file is larger than the upload limit of {size_text(settings.upload_max_bytes)}",
        )
    ]
    if settings.user_quota_bytes:
        remaining = max(0, settings.user_quota_bytes - _used_bytes(ctx, user))
        message = f"the upload would pass your storage quota of {size_text(settings.user_quota_bytes)}"
        limits.append(Limit(remaining, message, per_file=False))
    return tuple(limits)


def _used_bytes(ctx, user) -> int:
    return sum(v.size_bytes for v in ctx.heimdex.videos(user.id))


@router.post(
    "",
    status_code=201,
    summary="Upload videos (multipart/form-data, field `file`, several allowed)",
    responses={
        200: {"description": "every file was already in your library (same content): nothing new"},
        **errors(413, 415, 429, _415="not multipart/form-data, or not a video file name"),
    },
    openapi_extra=multipart_files("The video files, each in a field named `file`."),
)
async def upload(request: Request, user: CurrentUser, ctx: Ctx) -> JSONResponse:
    if ctx.upload_limiter is not None:
        ctx.upload_limiter.hit(user.id, "uploads")
    files = await receive_files(request, ctx.settings.home / "uploads", *_upload_limits(ctx, user))
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
    filename: CleanText = Field(min_length=1, max_length=255)
    size_bytes: int = Field(gt=0, description="The file's exact size: the store refuses anything larger.")
    content_type: CleanText = Field("application/octet-stream", max_length=100)


class UploadedRequest(BaseModel):
    key: CleanText = Field(min_length=1, max_length=500)
    filename: CleanText = Field(min_length=1, max_length=255)


@router.post(
    "/presign",
    summary="Direct upload to object storage: a presigned POST (s3:// storage only)",
    responses=errors(413, 415, 429, _400="local storage (use POST /videos), or a bad request"),
)
def presign(body: PresignRequest, user: CurrentUser, ctx: Ctx) -> dict:
    """Step 1 of a direct upload: POST the file as multipart/form-data to `url` with `fields` (the file
    last, in a field named `file`), then call POST /videos/uploaded with the `key`."""
    if _suffix(body.filename) not in VIDEO_SUFFIXES:
        raise ApiError(415, f"{body.filename}: not a video file name (expected one of .mp4, .mov, .mkv, ...)")
    for limit in _upload_limits(ctx, user):
        if body.size_bytes > limit.bytes:
            raise ApiError(413, limit.message)
    if ctx.upload_limiter is not None:
        ctx.upload_limiter.hit(user.id, "uploads")
    key = upload_key(user.id, secrets.token_hex(12), _suffix(body.filename))
    post = ctx.heimdex.blobs.presigned_upload(key, body.content_type, body.size_bytes)
    if post is None:
        raise ApiError(
            400,
            "direct uploads need object storage (HEIMDEX_STORAGE_URL=s3://...); "
            "upload to POST /videos instead",
        )
    return {"key": key, "url": post["url"], "fields": post["fields"], "complete": "/videos/uploaded"}


@router.post(
    "/uploaded",
    status_code=201,
    summary="Step 2 of a direct upload: index what was uploaded",
    responses=errors(404, 413, 415),
)
def uploaded(body: UploadedRequest, user: CurrentUser, ctx: Ctx) -> dict:
    if not body.key.startswith(upload_prefix(user.id)) or ".." in body.key:
        raise ApiError(404, "no upload of yours at that key")
    if _suffix(body.filename) not in VIDEO_SUFFIXES:
        raise ApiError(415, f"{body.filename}: not a video file name (expected one of .mp4, .mov, .mkv, ...)")
    blobs = ctx.heimdex.blobs
    size = blobs.size(body.key) if blobs.exists(body.key) else 0
    for limit in _upload_limits(ctx, user):  # several presigned uploads may each have fit the quota
        if size > limit.bytes:
            blobs.delete_prefix(body.key.rsplit("/", 1)[0] + "/")  # the upload's own folder
            raise ApiError(413, limit.message)
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
    videos = ctx.heimdex.videos(user.id, state)
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


@router.get("/{video_id}", summary="One video with its stages, progress and errors", responses=errors(404))
def get_video(video_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    video = ctx.heimdex.video(video_id, user.id)
    return {**video_json(ctx, video), "stages": stages_json(ctx, video)}


@router.get("/{video_id}/scenes", summary="The video's scenes", responses=errors(404))
def video_scenes(
    video_id: str,
    user: CurrentUser,
    ctx: Ctx,
    words: Annotated[bool, Query(description="Include word timings")] = False,
) -> list[dict]:
    return [scene_json(s, with_words=words) for s in ctx.heimdex.scenes(user.id, video_id)]


@router.delete(
    "/{video_id}",
    status_code=204,
    summary="Delete the video and everything derived from it",
    responses={
        202: {"description": "the video is being indexed: it is deleted when that job ends"},
        **errors(404),
    },
)
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


@router.post(
    "/{video_id}/reprocess",
    status_code=202,
    summary="Index the video again from scratch",
    responses=errors(404, 409, _409="the video is being indexed right now"),
)
def reprocess(video_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    video = ctx.heimdex.video(video_id, user.id)
    if ctx.worker.current == video.id:
        raise ConflictError("the video is being indexed right now; reprocess it when that finishes")
    ctx.heimdex.reprocess(video.id, user.id)
    ctx.queue.enqueue(video.id)
    return video_json(ctx, ctx.heimdex.video(video.id, user.id))


# Media types by file name, the same on every machine (the system's MIME table calls .ts a Qt
# translation file). Browsers play most .mov files only when told they are mp4.
STREAM_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".avi": "video/x-msvideo",
    ".wmv": "video/x-ms-wmv",
    ".asf": "video/x-ms-asf",
    ".flv": "video/x-flv",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".vob": "video/mpeg",
    ".ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".ogv": "video/ogg",
    ".mxf": "application/mxf",
}
OTHER_TYPE = "application/octet-stream"


def stream_media_type(filename: str) -> str:
    return STREAM_TYPES.get(_suffix(filename), OTHER_TYPE)


class StreamResponse(FileResponse):
    """FileResponse whose Range errors are JSON like every other error (Starlette's are plain text)."""

    async def __call__(self, scope, receive, send) -> None:
        headers = Headers(scope=scope)
        requested, if_range = headers.get("range"), headers.get("if-range")
        if requested is not None and (if_range is None or self._should_use_range(if_range)):
            size = self.stat_result.st_size if self.stat_result else 0
            try:
                self._parse_range_header(requested, size)
            except MalformedRangeHeader as exc:
                return await error_response(400, f"bad Range header: {exc.content}")(scope, receive, send)
            except RangeNotSatisfiable:
                message = f"the range {requested!r} is outside the file ({size} bytes)"
                problem = error_response(416, message, {"Content-Range": f"bytes */{size}"})
                return await problem(scope, receive, send)
        await super().__call__(scope, receive, send)


STREAM_RESPONSES = {
    200: binary("The whole file", *sorted({*STREAM_TYPES.values(), OTHER_TYPE})),
    206: binary("The requested byte range (Range: bytes=...)", *sorted({*STREAM_TYPES.values(), OTHER_TYPE})),
    307: {
        "description": "Object storage: the file is at a short-lived URL (Location), Range included",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
    **errors(404, 416, _400="a malformed Range header, or a bad request"),
}


@router.get(
    "/{video_id}/stream",
    summary="The original file, with HTTP Range support (206) for seeking",
    response_class=Response,
    responses=STREAM_RESPONSES,
)
@router.head(
    "/{video_id}/stream",
    summary="The original file's headers (size, type, Accept-Ranges), without the body",
    response_class=Response,
    responses=STREAM_RESPONSES,
)
def stream(video_id: str, request: Request, user: CurrentUser, ctx: Ctx) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    blobs = ctx.heimdex.blobs
    direct = blobs.url(video.original_key, method=request.method)
    if direct:  # object storage: the browser fetches (and seeks in) the file there, with a short-lived URL
        return RedirectResponse(direct, status_code=307)
    path = blobs.path(video.original_key)  # type: ignore[attr-defined]
    try:
        stat = path.stat()
    except FileNotFoundError:
        stat = None
    if stat is None or not S_ISREG(stat.st_mode):
        raise NotFoundError("the original file is missing")
    return StreamResponse(
        path,
        media_type=stream_media_type(video.filename),
        stat_result=stat,
        headers={"Cache-Control": "private, max-age=3600"},
    )


class ClipRequest(BaseModel):
    start_s: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Where the clip starts, seconds from the video's start"
    )
    end_s: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Where it ends (past the video's end: at its end)"
    )
    scene_id: str | None = Field(
        None, min_length=1, max_length=100, description="Or a scene of this video, instead of the two times"
    )
    exact: bool = Field(
        False,
        description="Encode again to start within one frame of start_s; by default the clip is copied"
        " from the last keyframe at or before start_s (up to one keyframe interval earlier), at no cost",
    )

    @model_validator(mode="after")
    def _one_moment(self) -> ClipRequest:
        times = (self.start_s is not None, self.end_s is not None)
        if self.scene_id is not None and any(times):
            raise ValueError("give start_s and end_s, or a scene_id, not both")
        if self.scene_id is None and not all(times):
            raise ValueError("a clip needs start_s and end_s, or a scene_id")
        return self


CLIP_HEADERS = {
    "X-Heimdex-Clip-Start": {
        "description": "Where the clip really starts in the video (s)",
        "schema": {"type": "string"},
    },
    "X-Heimdex-Clip-End": {"description": "Where it really ends (s)", "schema": {"type": "string"}},
}


@router.post(
    "/{video_id}/clips",
    summary="An MP4 of a moment: the video between two times, or one of its scenes",
    response_class=Response,
    responses={
        200: {**binary("The clip", "video/mp4"), "headers": CLIP_HEADERS},
        **errors(404, 409, 422, _409="The video has not been read yet"),
    },
)
def video_clip(video_id: str, body: ClipRequest, user: CurrentUser, ctx: Ctx) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    return clip_response(ctx.settings.home, video.filename, _clip_cut(ctx, user.id, video.id, body))


def _clip_cut(ctx: AppContext, owner_id: str, video_id: str, body: ClipRequest) -> Callable[[Path], Clip]:
    """What cuts the asked moment into a file: the scene (of this video), or the two times."""
    if body.scene_id is None:
        start_s, end_s = body.start_s or 0.0, body.end_s or 0.0  # both given: ClipRequest checks
        return lambda out: ctx.heimdex.clip(owner_id, video_id, start_s, end_s, out, exact=body.exact)
    scene = ctx.heimdex.scene(owner_id, body.scene_id)
    if scene.video_id != video_id:
        raise NotFoundError(f"no scene {body.scene_id!r} in this video")
    return lambda out: ctx.heimdex.scene_clip(owner_id, scene.id, out, exact=body.exact)


SUBTITLE_TYPES = {"vtt": "text/vtt", "srt": "application/x-subrip"}


@router.get(
    "/{video_id}/subtitles.{fmt}",
    summary="The video's speech as subtitles (WebVTT or SubRip), timed by the recognised words",
    response_class=Response,
    responses={
        200: binary("The subtitles", *(f"{t}; charset=utf-8" for t in SUBTITLE_TYPES.values())),
        **errors(404, 409, _409="The video is not indexed yet"),
    },
)
def video_subtitles(
    video_id: str,
    fmt: Literal["vtt", "srt"],
    user: CurrentUser,
    ctx: Ctx,
    download: Annotated[bool, Query(description="Ask the browser to save the file")] = False,
) -> Response:
    video = ctx.heimdex.video(video_id, user.id)
    headers = {"Cache-Control": "private, no-cache"}
    if download:
        headers["Content-Disposition"] = attachment(f"{PurePath(video.filename).stem}.{fmt}")
    return Response(
        ctx.heimdex.subtitles(user.id, video.id, fmt),
        media_type=f"{SUBTITLE_TYPES[fmt]}; charset=utf-8",
        headers=headers,
    )


@router.get(
    "/{video_id}/thumbnail",
    summary="The thumbnail of the video's first scene (WebP)",
    response_class=Response,
    responses={200: binary("The thumbnail", "image/webp"), **errors(404)},
)
def video_thumbnail(video_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    scenes = [s for s in ctx.heimdex.scenes(user.id, video_id) if s.thumbnail_key]
    if not scenes:
        raise NotFoundError("the video has no thumbnail yet")
    return thumbnail_response(ctx, scenes[0].thumbnail_key)


def thumbnail_response(ctx, key: str | None) -> Response:
    if not key or not ctx.heimdex.blobs.exists(key):
        raise NotFoundError("no thumbnail")
    return Response(
        ctx.heimdex.blobs.get_bytes(key),
        media_type="image/webp",
        headers={"Cache-Control": "private, max-age=600"},
    )
