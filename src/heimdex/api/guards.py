"""Refuse URLs whose path or query holds a control character, before any route sees them.

A NUL byte in `/videos/{id}` or `?q=` reached SQLite's FTS5 parser and PostgreSQL (which refuses NUL
in any text value) as a 500; every route takes ids and words from the URL, so one check covers all.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from heimdex.api.errors import error_response
from heimdex.validation import control_message, find_control


class UrlGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = url_problem(scope.get("path", ""), scope.get("query_string", b""))
            if problem:
                await error_response(400, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def url_problem(path: str, query_string: bytes) -> str | None:
    """Why the URL is refused, or None. Query values may hold tabs and newlines (a pasted query)."""
    code = find_control(path)
    if code:
        return control_message("the URL path", code)
    # UTF-8, not Latin-1: raw UTF-8 bytes (should a server pass them) must not read as C1 controls
    pairs = parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True, errors="replace")
    for key, value in pairs:
        code = find_control(key) or find_control(value, allow_whitespace=True)
        if code:
            return control_message(f"the query parameter {key.strip()[:40]!r}", code)
    return None
