"""JSON shapes of videos, scenes and hits, shared by the API and the web pages."""

from __future__ import annotations

from heimdex import subtitles
from heimdex.api.context import AppContext
from heimdex.domain import Scene, SearchHit, TranscriptEdit, Video, VideoState, Word
from heimdex.pipeline.assemble import words_to_text
from heimdex.pipeline.graph import STAGE_WEIGHTS, STAGES
from heimdex.queue.base import DEAD_LETTER_PREFIX


def video_links(video_id: str) -> dict[str, str]:
    return {
        "self": f"/videos/{video_id}",
        "stream": f"/videos/{video_id}/stream",
        "thumbnail": f"/videos/{video_id}/thumbnail",
        "scenes": f"/videos/{video_id}/scenes",
        "subtitles": f"/videos/{video_id}/subtitles.vtt",
        "watch": f"/app/watch/{video_id}",
    }


def video_json(ctx: AppContext, video: Video) -> dict:
    # claimed_by names a worker machine and process: internal, not for API users
    data = video.model_dump(mode="json", exclude={"original_key", "owner_id", "claimed_by"})
    data["duration_s"] = video.info.duration_s if video.info else None
    # A job that failed transiently more times than queue_retries (server mode): see queue/broker.py.
    data["dead_letter"] = bool(video.error and video.error.startswith(DEAD_LETTER_PREFIX))
    data["progress"] = progress_of(ctx, video)
    data["thumbnail"] = f"/videos/{video.id}/thumbnail" if video.scene_count else None
    data["links"] = video_links(video.id)
    return data


def progress_of(ctx: AppContext, video: Video) -> float:
    if video.state == VideoState.INDEXED:
        return 1.0
    live = ctx.progress.get(video.id)
    if live is not None and video.state in (VideoState.PROCESSING, VideoState.QUEUED):
        return live.fraction
    done = {r.stage for r in ctx.heimdex.stages(video.id, video.owner_id) if r.state.value == "done"}
    return round(sum(STAGE_WEIGHTS[s] for s in done) / sum(STAGE_WEIGHTS.values()), 3)


def stages_json(ctx: AppContext, video: Video) -> list[dict]:
    records = {r.stage: r for r in ctx.heimdex.stages(video.id, video.owner_id)}
    live = ctx.progress.get(video.id)
    out = []
    for stage in STAGES:
        record = records.get(stage)
        item = (
            record.model_dump(mode="json") if record else {"stage": stage, "state": "pending", "attempts": 0}
        )
        if live is not None and stage in live.running:
            item["fraction"] = round(live.running[stage], 3)
        out.append(item)
    return out


def scene_links(scene: Scene) -> dict[str, str]:
    start = round(scene.start_s, 3)
    return {
        "self": f"/scenes/{scene.id}",
        "thumbnail": f"/scenes/{scene.id}/thumbnail",
        "play": f"/app/watch/{scene.video_id}?t={start}",
        "stream": f"/videos/{scene.video_id}/stream#t={start}",
        "clip": f"/scenes/{scene.id}/clip.mp4",
        "similar": f"/scenes/{scene.id}/similar",
    }


def scene_json(scene: Scene, with_words: bool = True) -> dict:
    data = scene.model_dump(mode="json", exclude={"thumbnail_key", "sidecar_key", "words"})
    if with_words:
        data["words"] = [w.model_dump(mode="json") for w in scene.words]
    data["thumbnail"] = f"/scenes/{scene.id}/thumbnail" if scene.thumbnail_key else None
    data["links"] = scene_links(scene)
    return data


def hit_json(hit: SearchHit) -> dict:
    """The `heimdex search --json` shape, with the thumbnail as a URL and links to play the scene."""
    data = hit.model_dump(mode="json")
    data["thumbnail"] = f"/scenes/{hit.scene_id}/thumbnail" if hit.thumbnail else None
    start = round(hit.start_s, 3)
    data["links"] = {
        "play": f"/app/watch/{hit.video_id}?t={start}",
        "scene": f"/scenes/{hit.scene_id}",
        "stream": f"/videos/{hit.video_id}/stream#t={start}",
        "video": f"/videos/{hit.video_id}",
        "clip": f"/scenes/{hit.scene_id}/clip.mp4",
        "similar": f"/scenes/{hit.scene_id}/similar",
    }
    return data


def transcript_lines(words: list[Word]) -> list[dict]:
    """Words grouped into short lines (broken at pauses and sentence ends) for the player's transcript;
    `edit` names the owner's correction a line shows (null: as recognised)."""
    return [
        {"start_s": ln.start_s, "end_s": ln.end_s, "text": ln.text, "edit": ln.edit}
        for ln in subtitles.lines(words)
    ]


def edit_json(edit: TranscriptEdit) -> dict:
    data = edit.model_dump(mode="json", exclude={"original"})
    data["recognised"] = words_to_text(edit.original)
    return data
