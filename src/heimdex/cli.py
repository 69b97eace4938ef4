"""The `heimdex` command line."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from heimdex import __version__, subtitles
from heimdex.domain import Person, StageState, VideoState
from heimdex.errors import HeimdexError, InvalidRequestError, NotFoundError
from heimdex.logging import configure_logging
from heimdex.pipeline.events import StageEvent
from heimdex.pipeline.graph import STAGE_WEIGHTS, STAGES
from heimdex.queue.base import DEAD_LETTER_PREFIX
from heimdex.settings import Settings

app = typer.Typer(
    help="Heimdex: find the moment you need in hours of video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
people_app = typer.Typer(help="Enrol people by photo and find where they appear.", no_args_is_help=True)
app.add_typer(people_app, name="people")
users_app = typer.Typer(help="Accounts of the server (`heimdex serve`).", no_args_is_help=True)
app.add_typer(users_app, name="users")
export_app = typer.Typer(
    help="Take what Heimdex found out of it: subtitles, clips, reels.", no_args_is_help=True
)
app.add_typer(export_app, name="export")
transcript_app = typer.Typer(help="Read a video's transcript and correct its lines.", no_args_is_help=True)
app.add_typer(transcript_app, name="transcript")

out = Console()
err = Console(stderr=True)


class _State:
    settings: Settings | None = None
    verbose_logs: bool = False  # --log-level INFO/DEBUG or --json-logs: every log event is wanted


state = _State()


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(
            help="Data folder (env HEIMDEX_HOME).",
            envvar="HEIMDEX_HOME",
            show_default="a per-user data folder",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
    json_logs: Annotated[bool, typer.Option(help="Log JSON lines to stderr.")] = False,
) -> None:
    configure_logging(log_level, json_logs)
    state.verbose_logs = json_logs or log_level.upper() in ("DEBUG", "INFO")
    state.settings = Settings(home=home) if home else Settings()


def _app():
    from heimdex.service import Heimdex

    return Heimdex(state.settings)


# ---------------------------------------------------------------- index

# The pipeline's warnings about a video that failed: `index` and `reprocess` report each failure,
# with its reason, in their summary, so on their console these would only say it a second time.
_SUMMARISED_EVENTS = frozenset({"video failed", "stage error"})


def _drop_summarised(_logger: object, _method: str, event_dict: dict) -> dict:
    if event_dict.get("event") in _SUMMARISED_EVENTS:
        raise structlog.DropEvent
    return event_dict


def _summary_reports_failures() -> None:
    """Leave the pipeline's failure warnings to the command's summary, unless the user asked for
    verbose or JSON logs. Only this process's console changes: `serve` and `worker` log them."""
    if state.verbose_logs:
        return
    structlog.configure(processors=[_drop_summarised, *structlog.get_config()["processors"]])


class _IndexProgress:
    """One bar per video, moved by stage events arriving from the runner's threads."""

    def __init__(self, progress: Progress, task_id, filename: str) -> None:
        self.progress, self.task_id, self.filename = progress, task_id, filename
        self.done: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.lock = threading.Lock()

    def __call__(self, event: StageEvent) -> None:
        with self.lock:
            if event.state == StageState.DONE:
                self.running.pop(event.stage, None)
                self.done[event.stage] = 1.0
            elif event.state == StageState.RUNNING:
                self.running[event.stage] = event.fraction
            else:
                self.running.pop(event.stage, None)
            completed = sum(STAGE_WEIGHTS[s] for s in self.done) + sum(
                STAGE_WEIGHTS[s] * f for s, f in self.running.items()
            )
            stages = ", ".join(self.running) or ("done" if len(self.done) == len(STAGES) else "")
        self.progress.update(self.task_id, completed=completed, stage=stages)


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Video files and folders (searched recursively).")],
    force: Annotated[bool, typer.Option(help="Index again even if already indexed.")] = False,
    enqueue: Annotated[
        bool | None,
        typer.Option(
            help="Queue the videos for `heimdex worker` processes; default: when the queue is redis://."
        ),
    ] = None,
) -> None:
    """Index videos: scenes, speech, on-screen text, tags and faces."""
    from heimdex.queue.base import is_remote
    from heimdex.service import expand_inputs

    heimdex = _app()
    files = list(expand_inputs(paths))
    if not files:
        err.print("[red]No video files found in the given paths.[/red]")
        raise typer.Exit(2)
    if enqueue if enqueue is not None else is_remote(state.settings.queue_url):
        _enqueue(heimdex, files, force)
        return
    _summary_reports_failures()
    total = sum(STAGE_WEIGHTS.values())
    failures: list[tuple[str, str]] = []
    indexed = skipped = 0
    columns = [
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[stage]}"),
    ]
    with Progress(*columns, console=err, transient=False) as progress:
        for path in files:
            label = path.name if len(path.name) <= 40 else path.name[:37] + "..."
            task = progress.add_task(label, total=total, stage="queued")
            try:
                added = heimdex.add_file(path)
            except HeimdexError as exc:
                failures.append((str(path), str(exc)))
                progress.update(task, stage="[red]failed")  # the summary gives the reason
                continue
            video = added.video
            if not added.is_new and video.state == VideoState.INDEXED and not force:
                skipped += 1
                progress.update(task, completed=total, stage="already indexed")
                continue
            if force or video.state == VideoState.FAILED:
                heimdex.reprocess(video.id)
            video = heimdex.process(video.id, on_event=_IndexProgress(progress, task, label))
            if video.state == VideoState.INDEXED:
                indexed += 1
                progress.update(task, completed=total, stage=f"{video.scene_count} scenes")
            else:
                failures.append((str(path), video.error or "unknown error"))
                progress.update(task, stage="[red]failed")
    summary = f"indexed {indexed}" + (f", already indexed {skipped}" if skipped else "")
    summary += f", failed {len(failures)}" if failures else ""
    out.print(summary)
    for path, reason in failures:
        # soft_wrap: the terminal wraps a long line, rich would break the path where it must not
        err.print(f"[red]failed[/red] {escape(path)}: {escape(reason)}", soft_wrap=True)
    if failures:
        raise typer.Exit(1)


def _enqueue(heimdex, files: list[Path], force: bool) -> None:
    """Add the files and queue them for the workers (server mode); `status` shows their progress."""
    from heimdex.queue.base import is_remote

    if not is_remote(state.settings.queue_url):
        raise HeimdexError(
            "--enqueue needs HEIMDEX_QUEUE_URL=redis://host:port/db or amqp://host/vhost"
            " (and `heimdex worker`s)"
        )
    from heimdex.queue.broker import StageQueue

    queue = StageQueue(state.settings, heimdex.store)
    queued = 0
    for path in files:
        added = heimdex.add_file(path)
        video = added.video
        if not added.is_new and video.state == VideoState.INDEXED and not force:
            continue
        if force or video.state == VideoState.FAILED:
            heimdex.reprocess(video.id)
        queue.enqueue(video.id)
        out.print(f"queued {video.id} {path.name}")
        queued += 1
    out.print(f"queued {queued} of {len(files)}; `heimdex status` shows progress")
    queue.stop()


# ---------------------------------------------------------------- status


@app.command()
def status(
    video_id: Annotated[str | None, typer.Argument(help="Show one video's stages.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Indexed videos, their state and scenes; with VIDEO_ID, each stage's timing and errors."""
    heimdex = _app()
    if video_id:
        _video_status(heimdex, video_id, as_json)
        return
    videos = heimdex.videos()
    if as_json:
        out.print_json(data=[v.model_dump(mode="json") for v in videos])
        return
    rows = [_status_row(heimdex, video) for video in videos]
    table = Table(title=f"{len(videos)} video{'' if len(videos) == 1 else 's'} in {state.settings.home}")
    for header in _fit_columns(rows, out.width):
        wraps = _STATUS_COLUMNS[header]
        table.add_column(header, no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for row in rows:
        table.add_row(*(row[column.header] for column in table.columns))
    out.print(table)


# `heimdex status` columns, and whether each wraps. Ids, counts and durations never do (a folded id
# cannot be copied); file, state and error take the width left, so no header is broken to fit.
_STATUS_COLUMNS: dict[str, bool] = {
    "id": False,
    "file": True,
    "state": True,
    "scenes": False,
    "length": False,
    "language": False,
    "index time": False,
    "error": True,
}
# Left out in this order on a narrow terminal; `status ID` and `status --json` still show them.
_DROPPED_WHEN_NARROW = ("index time", "language", "length")
_WRAPPED_WIDTH = 12  # a wrapping column narrower than this is more line breaks than text


def _status_row(heimdex, video) -> dict[str, Text]:
    records = heimdex.stages(video.id)
    spent = sum(r.duration_s or 0 for r in records)
    style = {"indexed": "green", "failed": "red"}.get(video.state.value, "yellow")
    label = video.state.value
    if video.error and video.error.startswith(DEAD_LETTER_PREFIX):
        label += " (dead letter)"  # retries exhausted in server mode: `heimdex reprocess` to retry
    elif video.claimed_by:
        label += f" on {video.claimed_by}"
    cells = {
        "id": video.id,
        "file": video.filename,
        "scenes": str(video.scene_count),
        "length": f"{video.info.duration_s:.0f}s" if video.info else "",
        "language": video.language or "",
        "index time": f"{spent:.1f}s" if records else "",
        "error": video.error or "",
    }
    # Text, not markup: a file name or an error may hold [brackets]
    return {**{k: Text(v) for k, v in cells.items()}, "state": Text(label, style=style)}


def _fit_columns(rows: list[dict[str, Text]], width: int) -> list[str]:
    """The status columns that fit `width`, leaving out the optional ones when it is too narrow."""
    headers = list(_STATUS_COLUMNS)
    for optional in _DROPPED_WHEN_NARROW:
        if _table_width(rows, headers) <= width:
            break
        headers.remove(optional)
    return headers


def _table_width(rows: list[dict[str, Text]], headers: list[str]) -> int:
    """Columns that do not wrap at their widest cell, wrapping ones at most _WRAPPED_WIDTH; with
    each column's padding (2) and border (1), and the table's last border."""
    total = 1
    for header in headers:
        widest = max([len(header)] + [row[header].cell_len for row in rows])
        if _STATUS_COLUMNS[header]:
            widest = max(len(header), min(widest, _WRAPPED_WIDTH))
        total += widest + 3
    return total


def _video_status(heimdex, video_id: str, as_json: bool) -> None:
    video = heimdex.video(video_id)
    records = {r.stage: r for r in heimdex.stages(video.id)}
    if as_json:
        out.print_json(
            data={
                "video": video.model_dump(mode="json"),
                "stages": [records[s].model_dump(mode="json") for s in STAGES if s in records],
            }
        )
        return
    table = Table(title=f"{video.filename} ({video.id}): {video.state.value}")
    for column in ("stage", "state", "attempts", "seconds", "error"):
        table.add_column(column, overflow="fold")
    for stage in STAGES:
        r = records.get(stage)
        if r is None:
            table.add_row(stage, "[dim]pending", "0", "", "")
            continue
        style = {"done": "green", "failed": "red"}.get(r.state.value, "yellow")
        pieces = f" ({r.pieces_done}/{r.pieces} pieces)" if r.pieces else ""  # server mode's long audio
        table.add_row(
            stage,
            f"[{style}]{r.state.value}{pieces}",
            str(r.attempts),
            f"{r.duration_s:.2f}" if r.duration_s is not None else "",
            r.error or "",
        )
    out.print(table)


# ---------------------------------------------------------------- search


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Confidence(StrEnum):
    auto = "auto"
    low = "low"
    medium = "medium"
    high = "high"


@app.command()
def search(
    query: Annotated[
        str,
        typer.Argument(
            help='Words, "quoted phrases", person:NAME (several allowed); with --image, filters only.'
        ),
    ] = "",
    image: Annotated[
        Path | None, typer.Option("--image", help="Rank scenes by how much they look like this photo.")
    ] = None,
    like: Annotated[
        str | None, typer.Option("--like", help="More like this: scenes that look like this scene id.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    per_video: Annotated[
        int | None, typer.Option(min=1, help="Hits per video at most (default: setting).")
    ] = None,
    all_scenes: Annotated[bool, typer.Option("--all", help="No per-video cap.")] = False,
    video: Annotated[list[str] | None, typer.Option(help="Only this video id (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of hits, best first.")] = False,
    min_confidence: Annotated[
        Confidence,
        typer.Option(help="Hide hits below this confidence; auto hides the low tail after better hits."),
    ] = Confidence.auto,
) -> None:
    """Search indexed scenes: by words, or by an example photo (--image) or scene (--like)."""
    if image is None and like is None and not query.strip():
        raise InvalidRequestError("give a query, --image PHOTO or --like SCENE_ID")
    result = _app().search(
        query,
        image=image,
        like=like,
        limit=limit,
        offset=offset,
        per_video=None if all_scenes else per_video,  # --all wins over --per-video
        all_scenes=all_scenes,
        video_ids=tuple(video or ()),
        min_confidence=min_confidence.value,
    )
    if as_json:
        sys.stdout.write(
            json.dumps([h.model_dump(mode="json") for h in result.hits], ensure_ascii=False, indent=1) + "\n"
        )
        return
    if not result.hits:
        out.print(f"No scenes match {query or image or like!r}.")
        return
    if all(hit.confidence == "low" for hit in result.hits):
        out.print("[dim]No confident match; the closest scenes:[/dim]")
    for rank, hit in enumerate(result.hits, start=offset + 1):
        why = ", ".join(f"{name} #{int(info['rank'])}" for name, info in hit.channels.items())
        out.print(
            f"[bold]{rank}. {hit.filename}[/bold]  {_clock(hit.start_s)}–{_clock(hit.end_s)}"
            f"  [dim]{hit.confidence} confidence, score {hit.score:.4f}  ({why})[/dim]"
        )
        snippet = re.sub(r"<mark>(.*?)</mark>", r"[reverse]\1[/reverse]", hit.snippet.replace("[", r"\["))
        if snippet:
            out.print(f"   {snippet}")
        extra = [
            f"people: {', '.join(hit.people)}" if hit.people else "",
            f"possibly: {', '.join(hit.possible_people)}" if hit.possible_people else "",
            f"tags: {' · '.join(hit.tags[:5])}" if hit.tags else "",
        ]
        if any(extra):
            out.print("   [dim]" + "  ".join(e for e in extra if e) + "[/dim]")
    count = len(result.hits)
    out.print(f"[dim]{count} hit{'' if count == 1 else 's'} in {result.took_ms:.0f} ms[/dim]")


# ---------------------------------------------------------------- videos


@app.command()
def delete(video_id: Annotated[str, typer.Argument(help="The video id (see `heimdex status`).")]) -> None:
    """Delete a video with its scenes, vectors, faces, thumbnails and sidecars."""
    heimdex = _app()
    name = heimdex.video(video_id).filename
    heimdex.delete_video(video_id)
    out.print(f"deleted {name} ({video_id})")


class SubtitleFormat(StrEnum):
    vtt = "vtt"
    srt = "srt"


@export_app.command("subtitles")
def export_subtitles(
    video_id: Annotated[str, typer.Argument(help="The video id (see `heimdex status`).")],
    fmt: Annotated[
        SubtitleFormat, typer.Option("--format", "-f", help="WebVTT or SubRip.")
    ] = SubtitleFormat.vtt,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).")
    ] = None,
) -> None:
    """The video's speech as subtitles, timed by the recognised words."""
    from heimdex.service import LOCAL_OWNER

    text = _app().subtitles(LOCAL_OWNER, video_id, fmt.value)
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {escape(str(output))} ({text.count(' --> ')} cues)")


@export_app.command("clip")
def export_clip(
    scene_or_video: Annotated[
        str,
        typer.Argument(help="A scene id (from `heimdex search --json`), or a video id with --start/--end."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The MP4 to write.")],
    start: Annotated[float | None, typer.Option(help="With a video id: where the clip starts (s).")] = None,
    end: Annotated[float | None, typer.Option(help="With a video id: where it ends (s).")] = None,
    exact: Annotated[
        bool,
        typer.Option(help="Encode again to start within a frame (default: copy from the keyframe before)."),
    ] = False,
) -> None:
    """An MP4 of a scene, or of a video between two times."""
    from heimdex.service import LOCAL_OWNER

    heimdex = _app()
    if start is None and end is None:
        clip = heimdex.scene_clip(LOCAL_OWNER, scene_or_video, output, exact=exact)
    elif start is None or end is None:
        raise InvalidRequestError("give both --start and --end (or neither, with a scene id)")
    else:
        clip = heimdex.clip(LOCAL_OWNER, scene_or_video, start, end, output, exact=exact)
    how = "re-encoded" if clip.exact else "copied from the keyframe at or before the start"
    err.print(f"wrote {escape(str(output))}: {clip.start_s:.2f}-{clip.end_s:.2f} s of the video ({how})")


@export_app.command("reel")
def export_reel(
    output: Annotated[Path, typer.Option("--output", "-o", help="The MP4 to write.")],
    scene_ids: Annotated[
        list[str] | None, typer.Argument(help="Scene ids (see `heimdex search --json`), in order.")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option("--search", help="Or the hits of this search, best first (with --limit)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="With --search: this many hits at most.")] = 5,
    fade: Annotated[bool, typer.Option(help="Fade each scene in and out (--no-fade: hard cuts).")] = True,
) -> None:
    """A highlight reel: the scenes one after the other in one MP4, picked by id or by a search."""
    from heimdex.reels import Reels
    from heimdex.service import LOCAL_OWNER

    heimdex = _app()
    if bool(scene_ids) == bool(search and search.strip()):
        raise InvalidRequestError("give scene ids or --search QUERY (one of them)")
    if search:
        scene_ids = [hit.scene_id for hit in heimdex.search(search, limit=limit).hits]
        if not scene_ids:
            raise InvalidRequestError(f"nothing matched {search!r}: no reel to make")
    reels = Reels(heimdex)
    try:
        with Progress(
            TextColumn("reel"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), console=err
        ) as bar:
            task = bar.add_task("reel", total=1.0)
            length = reels.make(
                LOCAL_OWNER, scene_ids, output, fade=fade, progress=lambda f: bar.update(task, completed=f)
            )
    finally:
        reels.close()
    err.print(f"wrote {escape(str(output))}: {len(scene_ids)} scenes, {length:.1f} s")


_VIDEO = Annotated[str, typer.Argument(help="The video id (see `heimdex status`).")]


@transcript_app.command("show")
def transcript_show(video_id: _VIDEO, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The transcript line by line, with the time each starts; corrections are marked."""
    from heimdex.service import LOCAL_OWNER

    heimdex = _app()
    lines = [line for scene in heimdex.scenes(LOCAL_OWNER, video_id) for line in subtitles.lines(scene.words)]
    if as_json:
        out.print_json(data=[dataclasses.asdict(line) for line in lines])
        return
    for line in lines:
        mark = f"  [dim](edited: {line.edit})[/dim]" if line.edit else ""
        out.print(f"[dim]{_clock(line.start_s):>8}[/dim]  {escape(line.text)}{mark}")
    if not lines:
        out.print("no speech")


@transcript_app.command("correct")
def transcript_correct(
    video_id: _VIDEO,
    text: Annotated[str, typer.Argument(help="What is really said in that line.")],
    at: Annotated[float, typer.Option("--at", help="A time (s) inside the line to correct.", min=0)],
) -> None:
    """Correct the line playing at a time: search finds the new words at once, reprocess keeps them."""
    from heimdex.service import LOCAL_OWNER

    heimdex = _app()
    lines = [line for scene in heimdex.scenes(LOCAL_OWNER, video_id) for line in subtitles.lines(scene.words)]
    line = next((ln for ln in lines if ln.start_s - 0.05 <= at <= ln.end_s + 0.05), None)
    if line is None:
        raise InvalidRequestError(
            f"no line is spoken at {_clock(at)} (see `heimdex transcript show {video_id}`)"
        )
    edit = heimdex.correct_line(LOCAL_OWNER, video_id, line.start_s, line.end_s, text)
    out.print(f"corrected {_clock(edit.start_s)}: {escape(edit.text)}  [dim](edit {edit.id})[/dim]")


@transcript_app.command("undo")
def transcript_undo(
    video_id: _VIDEO, edit_id: Annotated[str, typer.Argument(help="The edit, as `transcript show` marks it.")]
) -> None:
    """Take a correction back: the line reads as recognised again."""
    from heimdex.service import LOCAL_OWNER

    _app().take_back_correction(LOCAL_OWNER, video_id, edit_id)
    out.print(f"took back {edit_id}")


@app.command()
def reprocess(video_id: Annotated[str, typer.Argument(help="The video id (see `heimdex status`).")]) -> None:
    """Index a video again from scratch (for example after changing models, or a dead letter).
    With a broker queue (server mode) the workers do it; `heimdex status` shows progress."""
    from heimdex.queue.base import is_remote

    heimdex = _app()
    heimdex.reprocess(video_id)
    if is_remote(state.settings.queue_url):
        from heimdex.queue.broker import StageQueue

        queue = StageQueue(state.settings, heimdex.store)
        queue.enqueue(video_id)
        queue.stop()
        out.print(f"queued {video_id}; `heimdex status {video_id}` shows progress")
        return
    _summary_reports_failures()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("[dim]{task.fields[stage]}"), console=err
    ) as progress:
        task = progress.add_task(video_id, total=sum(STAGE_WEIGHTS.values()), stage="")
        video = heimdex.process(video_id, on_event=_IndexProgress(progress, task, video_id))
    out.print(Text(f"{video.filename}: {video.state.value}" + (f" ({video.error})" if video.error else "")))
    if video.state != VideoState.INDEXED:
        raise typer.Exit(1)


@app.command()
def reembed() -> None:
    """Embed indexed videos' frames with the configured CLIP-style model (after HEIMDEX_CLIP_MODEL
    changed, or was set for a library indexed without it).

    Search keeps to the earlier model's vectors until every frame of an owner has the new model's;
    then the earlier ones are deleted. Ctrl-C stops it: running it again goes on where it stopped.
    It may run while `serve` and workers run (server mode: on any one machine with the model).
    """
    from heimdex.reembed import Reembedder

    heimdex = _app()
    reembedder = Reembedder(heimdex)
    model = reembedder.model().name
    owners = heimdex.store.owners()
    columns = [
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} frames"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task(f"re-embedding with {model}", total=None)
        done = reembedder.run(
            owners, on_progress=lambda p: progress.update(task, completed=p.done, total=p.total)
        )
    coverage = [heimdex.clip_coverage(owner) for owner in owners]
    behind = [c for c in coverage if not c.complete and c.frames]
    out.print(f"embedded {done} frames with {model}")
    if behind:
        missing = sum(c.missing for c in behind)
        err.print(
            f"[yellow]{missing} frames could not be read[/yellow] ({len(behind)} of {len(owners)} owners): "
            "their searches keep the earlier vectors; reprocess the videos whose originals are gone"
        )
        raise typer.Exit(1)
    out.print("every frame has its vector: searches use it")


# ---------------------------------------------------------------- people


@people_app.command("add")
def people_add(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    photos: Annotated[list[Path], typer.Argument(help="Photos showing the person's face.")],
) -> None:
    """Enrol a person (or add photos); they are found in videos already indexed, with no reprocessing."""
    heimdex = _app()
    for photo in photos:
        if not photo.is_file():
            raise HeimdexError(f"{photo}: no such file")
    person = heimdex.enrol(name, photos)
    out.print(f"{person.name}: {person.photo_count} photos, seen in {person.scene_count} scenes")
    if person.possible_count:
        out.print(f"[dim]{_to_review(person)}: `heimdex people review {_quoted(person.name)}`[/dim]")


def _to_review(person: Person) -> str:
    n = person.possible_count
    return f"{n} more scene{'' if n == 1 else 's'} may show {person.name}"


def _quoted(name: str) -> str:
    return f'"{name}"' if " " in name else name


@people_app.command("list")
def people_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Enrolled people."""
    people = _app().people()
    if as_json:
        out.print_json(data=[p.model_dump(mode="json") for p in people])
        return
    table = Table()
    for column in ("name", "photos", "scenes", "to review", "id"):
        table.add_column(column, no_wrap=column == "id")
    for p in people:
        table.add_row(p.name, str(p.photo_count), str(p.scene_count), str(p.possible_count or ""), p.id)
    out.print(table)


@people_app.command("review")
def people_review(
    name: Annotated[str, typer.Argument(help="Name or id.")],
    show_all: Annotated[
        bool, typer.Option("--all", help="Every linked face, not only possible ones.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Faces that may be the person (just past the match distance): confirm or reject each."""
    heimdex = _app()
    matches = heimdex.person_matches(name, possible_only=not show_all)
    if as_json:
        out.print_json(data=[dataclasses.asdict(m) for m in matches])
        return
    if not matches:
        out.print(f"nothing to review for {name}" if not show_all else f"no face linked to {name}")
        return
    table = Table()
    for column in ("face", "video", "at", "distance", "state"):
        table.add_column(column, no_wrap=column != "video")
    for m in matches:
        state = m.verdict or ("possible" if m.possible else "sure")
        table.add_row(str(m.face_pk), m.filename, _clock(m.t_s), f"{m.distance:.3f}", state)
    out.print(table)
    out.print(
        f"[dim]`heimdex people confirm {_quoted(name)} FACE` if it is them, "
        f"`heimdex people reject {_quoted(name)} FACE` if not[/dim]"
    )


def _judge(name: str, faces: list[int], verdict: str | None, done: str) -> None:
    heimdex = _app()
    for face in faces:
        person = heimdex.judge_match(name, face, verdict)
        out.print(f"face {face}: {done}")
    out.print(
        f"{person.name}: seen in {person.scene_count} scenes"
        + (f"; {_to_review(person)}" if person.possible_count else "")
    )


_FACES = Annotated[
    list[int], typer.Argument(help="Face numbers, as `heimdex people review` lists them.", min=1, max=2**62)
]


@people_app.command("confirm")
def people_confirm(name: Annotated[str, typer.Argument(help="Name or id.")], faces: _FACES) -> None:
    """Say that these faces are the person: their scenes count as theirs."""
    _judge(name, faces, "confirmed", "confirmed")


@people_app.command("reject")
def people_reject(name: Annotated[str, typer.Argument(help="Name or id.")], faces: _FACES) -> None:
    """Say that these faces are not the person: they are no longer linked, even after re-matching."""
    _judge(name, faces, "rejected", "rejected")


@people_app.command("unjudge")
def people_unjudge(name: Annotated[str, typer.Argument(help="Name or id.")], faces: _FACES) -> None:
    """Forget a confirm or reject: the matcher decides these faces again."""
    _judge(name, faces, None, "back to the matcher's call")


@people_app.command("remove")
def people_remove(name: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Remove a person, their photos and every link to faces in videos."""
    _app().remove_person(name)
    out.print(f"removed {name}")


@people_app.command("rename")
def people_rename(name: str, new_name: str) -> None:
    """Rename a person."""
    person = _app().rename_person(name, new_name)
    out.print(f"renamed to {person.name}")


# ---------------------------------------------------------------- unnamed people (face groups)
_GROUP = Annotated[str, typer.Argument(help="A group id, as `heimdex people unnamed` lists them.")]


@people_app.command("unnamed")
def people_unnamed(
    show_all: Annotated[bool, typer.Option("--all", help="Named and hidden groups too.")] = False,
    crops: Annotated[
        Path | None, typer.Option(help="Save the crops of each group's best faces here, as FACE.jpg.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """People nobody enrolled: the faces of your videos grouped by who they look like, largest first."""
    heimdex = _app()
    groups = heimdex.face_groups(named=show_all, hidden=show_all)
    if crops is not None:
        _save_crops(heimdex, [f.face_pk for g in groups for f in g.best_faces if f.crop_key], crops)
    if as_json:
        out.print_json(data=[g.model_dump(mode="json") for g in groups])
        return
    if not groups:
        out.print("no unnamed faces")
        return
    table = Table()
    for column in ("group", "faces", "scenes", "seen in", "name"):
        table.add_column(column, no_wrap=column == "group")
    for g in groups:
        seen = ", ".join(dict.fromkeys(f"{f.filename} {_clock(f.t_s)}" for f in g.best_faces))
        name = g.person_name or ("(hidden)" if g.hidden else "")
        table.add_row(g.id, str(g.face_count), str(g.scene_count), seen, name)
    out.print(table)
    out.print("[dim]`heimdex people name GROUP NAME` to name one, `heimdex people merge GROUP INTO`[/dim]")


@people_app.command("cluster")
def people_cluster() -> None:
    """Group the faces that are in no group yet (indexing does it for each new video)."""
    made = _app().cluster_faces()
    out.print(f"{len(made)} new group{'' if len(made) == 1 else 's'}")


@people_app.command("name")
def people_name(group: _GROUP, name: Annotated[str, typer.Argument(help="Who they are.")]) -> None:
    """Name a group: it becomes the person of that name (new, or enrolled already), found in search."""
    person = _app().name_group(group, name)
    out.print(f"{person.name}: seen in {person.scene_count} scenes")


_GROUP_OR_PERSON = Annotated[str, typer.Argument(help="A group id, or a person's name or id.")]


@people_app.command("merge")
def people_merge(source: _GROUP_OR_PERSON, into: _GROUP_OR_PERSON) -> None:
    """Merge one into another: the same person. Two groups: the faces join INTO's group (if both are
    named, so are the people). Two people (say "Donna", enrolled by photo, and "Donna Smith", a named
    group): INTO keeps its name and takes the other's photos, faces and groups."""
    from heimdex.service import LOCAL_OWNER

    heimdex = _app()
    if _is_group(heimdex, source):
        merged = heimdex.merge_groups(source, into)
        out.print(f"{merged.id}: {merged.face_count} faces in {merged.scene_count} scenes")
        return
    try:
        heimdex.person(LOCAL_OWNER, source)
    except NotFoundError:
        raise NotFoundError(f"no unnamed person {source!r}, nor a person of that name or id") from None
    person = heimdex.merge_people(source, into)
    out.print(f"{person.name}: {person.photo_count} photos, seen in {person.scene_count} scenes")


def _is_group(heimdex, ref: str) -> bool:
    try:
        heimdex.face_group(ref)
    except NotFoundError:
        return False
    return True


@people_app.command("move")
def people_move(
    group: _GROUP,
    face: Annotated[int, typer.Argument(help="The face, as `--json` lists it.", min=1, max=2**62)],
    to: Annotated[str | None, typer.Option(help="The group it belongs to (default: one of its own).")] = None,
) -> None:
    """Take a wrongly grouped face out of its group."""
    out.print(f"face {face}: now in group {_app().move_face(group, face, to)}")


@people_app.command("hide")
def people_hide(
    group: _GROUP, show: Annotated[bool, typer.Option("--show", help="Show it again.")] = False
) -> None:
    """Hide a group (strangers in the background) from the list of unnamed people."""
    _app().hide_group(group, hidden=not show)
    out.print(f"{group}: {'shown' if show else 'hidden'}")


@people_app.command("ungrouped")
def people_ungrouped(
    crops: Annotated[
        Path | None, typer.Option(help="Save each face's crop in this folder, as FACE.jpg.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Faces in no group: too small or blurred to start one, and near none. Largest first."""
    heimdex = _app()
    faces = heimdex.ungrouped_faces()
    if crops is not None:
        _save_crops(heimdex, [f.face_pk for f in faces if f.crop_key], crops)
    if as_json:
        out.print_json(data=[f.model_dump(mode="json") for f in faces])
        return
    if not faces:
        out.print("every face is in a group")
        return
    table = Table()
    for column in ("face", "video", "at", "scene", "size"):
        table.add_column(column, no_wrap=column != "video")
    for f in faces:
        scene, size = str(f.scene_index + 1), f"{f.size_px:.0f} px"
        table.add_row(str(f.face_pk), f.filename, _clock(f.t_s), scene, size)
    out.print(table)
    out.print("[dim]`heimdex people assign FACE --person NAME` (or --to GROUP); --crops DIR: see them[/dim]")


def _save_crops(heimdex, faces: list[int], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for face in faces:
        (folder / f"{face}.jpg").write_bytes(heimdex.face_image(face))
    err.print(f"{len(faces)} crops in {escape(str(folder))}")


@people_app.command("assign")
def people_assign(
    face: Annotated[int, typer.Argument(help="The face, as `ungrouped` lists it.", min=1, max=2**62)],
    to: Annotated[str | None, typer.Option(help="The group it belongs to.")] = None,
    person: Annotated[
        str | None, typer.Option(help="Who it is (name or id): it joins their largest group.")
    ] = None,
) -> None:
    """Put a face with a person or in a group (neither: a group of its own, to name later)."""
    out.print(f"face {face}: now in group {_app().assign_face(face, group_id=to, person=person)}")


# ---------------------------------------------------------------- server and accounts


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Stages run at once by this process.")] = 1,
    queues: Annotated[
        str | None,
        typer.Option(help="Queues to take, e.g. asr,vision (env HEIMDEX_WORKER_QUEUES; default: all)."),
    ] = None,
    warm: Annotated[bool, typer.Option(help="Load the models before taking the first stage.")] = True,
) -> None:
    """Run the stages that `serve` or `index` queued on the broker (server mode).

    The broker is HEIMDEX_QUEUE_URL (redis://... or amqp://...). Queues: media (probe, audio, cuts,
    frames), asr, vision (OCR, tags, faces) and index (align, embed, sidecar, commit).

    SIGTERM or Ctrl-C: take no new stage and finish the current one; a second one hands the current
    stage back at once (another worker runs it again from its beginning).
    """
    import signal

    from heimdex.queue.base import is_remote
    from heimdex.queue.broker import StageWorker, parse_queues
    from heimdex.service import Heimdex

    settings = state.settings
    if not is_remote(settings.queue_url):
        raise HeimdexError(
            "`heimdex worker` needs HEIMDEX_QUEUE_URL=redis://host:port/db or amqp://host/vhost"
        )
    try:
        names = parse_queues(queues if queues is not None else settings.worker_queues)
    except ValueError as exc:
        raise HeimdexError(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_json)
    heimdex = Heimdex(settings)
    if warm:
        _warm_models(heimdex, names)
    runner = StageWorker(heimdex, settings, queues=names, concurrency=concurrency)

    def stop(signum, frame) -> None:
        if runner.draining.is_set():
            runner.handler.release_all()
            import os

            os._exit(0)  # a stage cannot be interrupted: its message comes back to another worker
        err.print("stopping after the current stage (signal again to hand it back now)")
        runner.draining.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run()
    heimdex.close()


# The models each queue's stages use (media stages decode only).
_QUEUE_MODELS = {
    "media": (),
    "asr": ("asr",),
    "vision": ("tagger", "ocr", "faces", "appearance", "clip"),
    "index": ("text",),
}


def _warm_models(heimdex, queues: list[str]) -> None:
    """Load the models the worker's queues use once, before the first stage, so stages take
    predictable time."""
    models = heimdex.models
    for queue in queues:
        for name in _QUEUE_MODELS[queue]:
            getattr(models, name)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (env HEIMDEX_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (env HEIMDEX_PORT).")] = None,
    worker: Annotated[bool, typer.Option(help="Run the in-process indexing worker.")] = True,
) -> None:
    """Start the API, the web app and an in-process worker."""
    import uvicorn

    from heimdex.api import create_app

    settings = state.settings
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    configure_logging(settings.log_level, settings.log_json)
    application = create_app(settings, run_worker=worker)
    err.print(f"Heimdex {__version__} on http://{settings.host}:{settings.port}  (data in {settings.home})")
    uvicorn.run(
        application,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=3,
        **proxy_options(settings),
    )


def proxy_options(settings: Settings) -> dict:
    """uvicorn's handling of X-Forwarded-For/-Proto: only from HEIMDEX_TRUSTED_PROXIES. uvicorn's
    own default trusts 127.0.0.1, so that any local process (or a proxy that does not set the
    header) could pose as any client address and dodge the per-address login limits."""
    trusted = settings.trusted_proxies
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": list(trusted)}


def _accounts():
    from heimdex.accounts import Accounts, open_account_store

    return Accounts(state.settings, open_account_store(state.settings.resolved_database_url))


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The login email.")],
    password: Annotated[
        str | None,
        typer.Option(help="Asked for if not given (env HEIMDEX_PASSWORD).", envvar="HEIMDEX_PASSWORD"),
    ] = None,
    admin: Annotated[bool, typer.Option(help="Make the user an administrator.")] = False,
) -> None:
    """Create an account (the first admin, or users when registration is closed)."""
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = _accounts().create_user(email, password, is_admin=admin)
    out.print(f"created {'admin ' if user.is_admin else ''}{user.email} ({user.id})")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Accounts on this server."""
    users = _accounts().users()
    if as_json:
        out.print_json(
            data=[u.model_dump(mode="json", exclude={"password_hash", "token_generation"}) for u in users]
        )
        return
    table = Table()
    for column in ("email", "admin", "id"):
        table.add_column(column)
    for u in users:
        table.add_row(u.email, "yes" if u.is_admin else "", u.id)
    out.print(table)


def _find_user(accounts, email: str):
    user = accounts.user_by_email(email)
    if user is None:
        raise HeimdexError(f"no user {email}")
    return user


@users_app.command("set-password")
def users_set_password(
    email: str,
    password: Annotated[str | None, typer.Option(envvar="HEIMDEX_PASSWORD")] = None,
) -> None:
    """Set a user's password; their sessions and personal API tokens stop working."""
    accounts = _accounts()
    user = _find_user(accounts, email)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    accounts.set_password(user, password)
    out.print(f"password changed for {user.email}; their sessions and API tokens were revoked")


@users_app.command("logout-all")
def users_logout_all(
    email: str,
    api_tokens: Annotated[bool, typer.Option(help="Revoke their personal API tokens too.")] = False,
) -> None:
    """End every session of a user (a lost phone, a shared computer): they must log in again."""
    accounts = _accounts()
    sessions, tokens = accounts.logout_everywhere(_find_user(accounts, email), api_tokens=api_tokens)
    out.print(f"ended {sessions} sessions" + (f" and revoked {tokens} API tokens" if api_tokens else ""))


@users_app.command("delete")
def users_delete(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an account with its videos, people, photos and tokens. This cannot be undone."""
    from heimdex.accounts.deletion import delete_account
    from heimdex.service import Heimdex

    accounts = _accounts()
    user = _find_user(accounts, email)
    if not yes:
        typer.confirm(f"Delete {user.email} and all their videos and people?", abort=True)
    result = delete_account(accounts, Heimdex(state.settings), user)
    out.print(f"deleted {user.email}: {result.videos} videos, {result.people} people")


@app.command()
def migrate(
    url: Annotated[str | None, typer.Option(help="Database URL (default: HEIMDEX_DATABASE_URL).")] = None,
) -> None:
    """Create or upgrade the PostgreSQL schema (SQLite needs no migration)."""
    target = url or state.settings.resolved_database_url
    if not target.startswith(("postgresql://", "postgres://")):
        out.print("SQLite databases are created and upgraded automatically; nothing to do.")
        return
    from heimdex.db.postgres import head_revision
    from heimdex.db.postgres import migrate as run_migrations

    run_migrations(target)
    out.print(f"database is at schema revision {head_revision()}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"heimdex {__version__}")


def main() -> None:
    try:
        app()
    except HeimdexError as exc:
        # Not wrapped at the terminal's width (a hint such as person:"Mary Ann" stays whole), and
        # not markup: the message may quote a file name or a query with [brackets].
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to finish the work")
        sys.exit(130)


if __name__ == "__main__":
    main()
