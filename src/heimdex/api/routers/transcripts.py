"""Transcripts: a video's lines, and the owner's corrections of them."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from heimdex.api.deps import Ctx, CurrentUser
from heimdex.api.openapi import USER, errors
from heimdex.api.views import edit_json, transcript_lines
from heimdex.corrections import MAX_TEXT
from heimdex.validation import CleanFreeText

router = APIRouter(prefix="/videos", tags=["transcripts"], responses=USER)


@router.get(
    "/{video_id}/transcript",
    summary="The video's transcript as lines per scene, and the owner's corrections",
    responses=errors(404),
)
def get_transcript(video_id: str, user: CurrentUser, ctx: Ctx) -> dict:
    scenes = ctx.heimdex.scenes(user.id, video_id)
    return {
        "video_id": video_id,
        "scenes": [
            {"scene_id": s.id, "start_s": s.start_s, "end_s": s.end_s, "lines": transcript_lines(s.words)}
            for s in scenes
        ],
        "edits": [edit_json(e) for e in ctx.heimdex.transcript_edits(user.id, video_id)],
    }


class LineCorrection(BaseModel):
    start_s: float = Field(
        ge=0, allow_inf_nan=False, description="Where the line starts (a line's start_s from GET transcript)"
    )
    end_s: float = Field(gt=0, allow_inf_nan=False, description="Where it ends")
    text: CleanFreeText = Field(min_length=1, max_length=MAX_TEXT, description="What is said there")


@router.put(
    "/{video_id}/transcript/lines",
    summary="Correct a transcript line: the scene's text, full text and vectors change at once",
    description="The words recognised between start_s and end_s give way to `text`. The correction is"
    " kept apart from the recognised words: a reprocess lays it over the new words again. A line that"
    " overlaps an earlier correction replaces it.",
    responses=errors(404, 409, 422, _409="The video is not indexed (being indexed again, or failed)"),
)
def correct_line(video_id: str, body: LineCorrection, user: CurrentUser, ctx: Ctx) -> dict:
    edit = ctx.heimdex.correct_line(user.id, video_id, body.start_s, body.end_s, body.text)
    return edit_json(edit)


@router.delete(
    "/{video_id}/transcript/edits/{edit_id}",
    summary="Take a correction back: the line reads as recognised again",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409),
)
def take_back(video_id: str, edit_id: str, user: CurrentUser, ctx: Ctx) -> Response:
    ctx.heimdex.take_back_correction(user.id, video_id, edit_id)
    return Response(status_code=204)
