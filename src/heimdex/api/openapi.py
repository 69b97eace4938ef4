"""What /openapi.json says beyond the routes' signatures: the error statuses each route can answer,
binary responses, and multipart request bodies (the upload routes parse those themselves).

Every error is JSON `{"status": ..., "message": ...}` (ErrorBody). Statuses every route can give:
400 (the URL guard refuses control characters in any path or query) and 422 (invalid parameters);
routes that take a user add 401 (no or a bad token) and 403 (a cookie-authenticated write without
the CSRF header, or not allowed).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    """The body of every error response."""

    status: int
    message: str


ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated: no token, or an expired or revoked one",
    403: "Forbidden: not allowed, or a cookie-authenticated write without the X-Heimdex-CSRF header",
    404: "Not found (or not yours)",
    409: "Conflict",
    413: "Past the size limit or the storage quota",
    415: "Unsupported media type",
    416: "Range not satisfiable (Content-Range gives the size)",
    422: "Invalid parameters or body",
    429: "Too many requests (Retry-After says when to try again)",
}

Responses = dict[int | str, dict[str, Any]]


def errors(*statuses: int, **descriptions: str) -> Responses:
    """`responses=` entries for these error statuses; `_404="..."` replaces a generic description."""
    return {
        status: {
            "model": ErrorBody,
            "description": descriptions.get(f"_{status}", ERROR_DESCRIPTIONS[status]),
        }
        for status in statuses
    }


PUBLIC = errors(400, 422)  # routers whose routes need no user
USER = errors(400, 401, 403, 422)  # routers whose routes take the user

BINARY = {"type": "string", "format": "binary"}


def binary(description: str, *media_types: str) -> dict[str, Any]:
    """A response whose body is a file of one of these media types."""
    return {"description": description, "content": {m: {"schema": BINARY} for m in media_types}}


def multipart_files(description: str) -> dict[str, Any]:
    """`openapi_extra` for a route that reads multipart/form-data files (field `file`, repeatable)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "array", "items": BINARY}},
                    },
                    "encoding": {"file": {"contentType": "application/octet-stream"}},
                }
            },
        }
    }
