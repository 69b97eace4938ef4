"""Streamed multipart uploads: each file part goes straight to a temporary file on disk while its
size is counted, so an upload is never held in memory and the size limit is enforced as the bytes
arrive (413 as soon as it is passed, without reading the rest).

File names are kept as sent: browsers put raw UTF-8 in `filename=` (RFC 7578), some clients send
RFC 5987 `filename*=UTF-8''...` (preferred when present, as RFC 6266 says), and a legacy client's
non-UTF-8 bytes are read as Latin-1. A name with a control character is refused (400)."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException

from heimdex.api.errors import ApiError
from heimdex.errors import HeimdexError
from heimdex.logging import get_logger
from heimdex.validation import control_message, find_control

log = get_logger(__name__)
MAX_FIELD_BYTES = 64 * 1024  # plain form fields are small
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class UploadArea:
    """The folder uploads land in while they arrive, shared by every API process using the same home.

    Each process names its temporary files after itself (`.upload-<owner>-...`) and holds a lock on
    `.owner-<owner>` while it lives. When a process claims the folder (at start), it removes the files
    of every owner that holds no lock: a process killed mid-upload leaves no debris behind, and one
    still running beside it keeps its uploads. The kernel drops the lock when a process dies.
    """

    _areas: ClassVar[dict[Path, UploadArea]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.owner = secrets.token_hex(8)
        self.prefix = f".upload-{self.owner}-"
        self.removed = 0

    @classmethod
    def claim(cls, folder: Path) -> UploadArea:
        """This process's area in `folder`; the first claim sweeps what dead processes left."""
        folder = Path(os.path.abspath(folder))
        with cls._guard:
            area = cls._areas.get(folder)
            if area is None:
                area = cls(folder)
                area._lock_marker()
                area.removed = area._sweep()
                cls._areas[folder] = area
            return area

    def _lock_marker(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # Locked before it is visible under its name: a sweeping process never sees it unlocked.
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".claim-")
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(tmp, self.folder / f".owner-{self.owner}")
        self._marker_fd = fd  # held open (and locked) for the life of the process

    def _alive(self, owner: str) -> bool:
        if owner == self.owner:
            return True
        try:
            fd = os.open(self.folder / f".owner-{owner}", os.O_RDONLY)
        except FileNotFoundError:
            return False  # never claimed (names of older versions) or already swept
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return True  # no locks on this file system: cannot tell, so keep
        finally:
            os.close(fd)
        return False

    def _sweep(self) -> int:
        removed = 0
        for path in self.folder.glob(".upload-*"):
            if not self._alive(path.name.removeprefix(".upload-").split("-", 1)[0]):
                path.unlink(missing_ok=True)
                removed += 1
        for marker in self.folder.glob(".owner-*"):
            if not self._alive(marker.name.removeprefix(".owner-")):
                marker.unlink(missing_ok=True)
        for claim in self.folder.glob(".claim-*"):  # a process killed between mkstemp and replace
            if not _locked(claim):
                claim.unlink(missing_ok=True)
        if removed:
            log.info("uploads.swept", folder=str(self.folder), files=removed)
        return removed

    def new_file(self) -> tuple[int, Path]:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=self.prefix)
        return fd, Path(tmp)


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True  # gone already: nothing to do
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass
class UploadedFile:
    field: str
    filename: str
    path: Path
    size: int = 0


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # a legacy client's ISO-8859-1 name, rather than U+FFFD


def disposition_params(raw: bytes) -> dict[str, str]:
    """The parameters of a Content-Disposition header value, unquoted, names lower-cased."""
    params: dict[str, str] = {}
    for key, value in _PARAM.findall(_text(raw)):
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace("\\\\", "\\").replace('\\"', '"')
        params.setdefault(key.lower(), value)
    return params


def _extended(value: str) -> str | None:
    """An RFC 5987 value `charset'language'percent-encoded`, decoded; None if it is malformed."""
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    if not rest or not encoded:
        return None
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


def upload_filename(params: dict[str, str]) -> str | None:
    """The file name a part was sent with (None for a plain form field), as the user named it."""
    extended = _extended(params["filename*"]) if "filename*" in params else None
    filename = extended if extended is not None else params.get("filename")
    if filename is None:
        return None
    code = find_control(filename)
    if code is not None:
        raise ApiError(400, control_message("the file name", code))
    # Only the last path component: browsers on some systems send full paths.
    return Path(filename.replace("\\", "/")).name[:255] or "upload"


@dataclass(frozen=True)
class Limit:
    """At most `bytes` in every file of an upload (`per_file`) or in all of them together."""

    bytes: int
    message: str  # the 413's message when passed
    per_file: bool = True


@dataclass
class _Sink:
    area: UploadArea
    limits: tuple[Limit, ...]
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    _headers: dict[str, bytes] = field(default_factory=dict)
    _name: bytes = b""
    _value: bytes = b""
    _file: UploadedFile | None = None
    _out: object = None
    _text: bytearray = field(default_factory=bytearray)
    _field: str | None = None

    def on_part_begin(self) -> None:
        self._headers, self._file, self._field, self._text = {}, None, None, bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.decode("latin-1").lower()] = self._value  # raw: names are UTF-8
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        params = disposition_params(self._headers.get("content-disposition", b""))
        name = params.get("name", "")
        filename = upload_filename(params)
        if filename is None:
            self._field = name
            return
        fd, tmp = self.area.new_file()
        self._out = os.fdopen(fd, "wb")
        self._file = UploadedFile(name, filename, tmp)
        self.files.append(self._file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.size += end - start
            total = sum(f.size for f in self.files)
            for limit in self.limits:
                if (self._file.size if limit.per_file else total) > limit.bytes:
                    raise ApiError(413, limit.message)
            self._out.write(data[start:end])  # type: ignore[attr-defined]
        elif self._field is not None:
            self._text += data[start:end]
            if len(self._text) > MAX_FIELD_BYTES:
                raise ApiError(413, f"form field {self._field!r} is too large")

    def on_part_end(self) -> None:
        if self._file is not None:
            self._out.close()  # type: ignore[attr-defined]
            self._out = None
        elif self._field is not None:
            self.fields[self._field] = self._text.decode("utf-8", "replace")

    def discard(self) -> None:
        if self._out is not None:
            self._out.close()  # type: ignore[attr-defined]
        for f in self.files:
            f.path.unlink(missing_ok=True)


async def receive_files(request: Request, folder: Path, *limits: Limit) -> list[UploadedFile]:
    """Parse a multipart/form-data body into temporary files under `folder` (same disk as the blobs,
    so keeping the original is a hard link, not a copy), within the `limits` (413 as soon as a file,
    or all of them together, passes one). The caller deletes the files."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "send the files as multipart/form-data")
    declared = request.headers.get("content-length")
    for limit in limits:  # refused before reading: a body past any limit, with room for part headers
        if declared and declared.isdigit() and int(declared) > limit.bytes + 1024**2:
            raise ApiError(413, limit.message)
    sink = _Sink(UploadArea.claim(folder), limits)
    callbacks = {
        name: getattr(sink, name)
        for name in (
            "on_part_begin",
            "on_header_field",
            "on_header_value",
            "on_header_end",
            "on_headers_finished",
            "on_part_data",
            "on_part_end",
        )
    }
    parser = MultipartParser(params[b"boundary"], callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except (HeimdexError, HTTPException):  # ours (413, a bad name) or a body that stopped coming (408)
        sink.discard()
        raise
    except Exception as exc:  # a malformed body or a client that went away
        sink.discard()
        raise ApiError(400, f"could not read the upload: {exc}") from exc
    return sink.files
