"""Streamed multipart uploads: each file part goes straight to a temporary file on disk while its
size is counted, so an upload is never held in memory and the size limit is enforced as the bytes
arrive (413 as soon as it is passed, without reading the rest)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from heimdex.api.errors import ApiError

MAX_FIELD_BYTES = 64 * 1024  # plain form fields are small


@dataclass
class UploadedFile:
    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass
class _Sink:
    folder: Path
    limit: int
    limit_message: str
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    _headers: dict[str, str] = field(default_factory=dict)
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
        self._headers[self._name.decode("latin-1").lower()] = self._value.decode("utf-8", "replace")
        self._name, self._value = b"", b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is None:
            self._field = name
            return
        # Only the last path component: browsers on some systems send full paths.
        clean = Path(filename.decode("utf-8", "replace").replace("\\", "/")).name[:255] or "upload"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        self._out = os.fdopen(fd, "wb")
        self._file = UploadedFile(name, clean, Path(tmp))
        self.files.append(self._file)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.size += end - start
            if self._file.size > self.limit:
                raise ApiError(413, self.limit_message)
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


async def receive_files(request: Request, folder: Path, limit: int, limit_message: str) -> list[UploadedFile]:
    """Parse a multipart/form-data body into temporary files under `folder` (same disk as the blobs,
    so keeping the original is a hard link, not a copy). The caller deletes the files."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "send the files as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 1024 * 1024:  # room for part headers
        raise ApiError(413, limit_message)
    folder.mkdir(parents=True, exist_ok=True)
    sink = _Sink(folder, limit, limit_message)
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
    except ApiError:
        sink.discard()
        raise
    except Exception as exc:  # a malformed body or a client that went away
        sink.discard()
        raise ApiError(400, f"could not read the upload: {exc}") from exc
    return sink.files
