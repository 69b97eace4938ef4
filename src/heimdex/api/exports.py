"""Files cut or written on request (clips, subtitles): how they are named and sent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from heimdex.private_files import private_dir

if TYPE_CHECKING:
    from heimdex.media.clips import Clip


def attachment(filename: str) -> str:
    """A Content-Disposition that saves under `filename`: an ASCII fallback, and the name itself
    percent-encoded (RFC 6266) so that any name survives the header."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _at(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def clip_response(home: Path, filename: str, cut: Callable[[Path], Clip]) -> FileResponse:
    """Cut a clip into a private temporary file and send it as an MP4 download (the file goes once
    sent)."""
    fd, name = tempfile.mkstemp(suffix=".mp4", dir=private_dir(home / "tmp"))
    os.close(fd)
    path = Path(name)
    try:
        clip = cut(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    stem = PurePath(filename).stem
    return FileResponse(
        path,
        media_type="video/mp4",
        headers={
            "Content-Disposition": attachment(f"{stem} {_at(clip.start_s)}-{_at(clip.end_s)}.mp4"),
            "X-Heimdex-Clip-Start": f"{clip.start_s:.3f}",
            "X-Heimdex-Clip-End": f"{clip.end_s:.3f}",
            "Cache-Control": "private, no-store",
        },
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
