"""Security headers on every response: a Content-Security-Policy, no framing, no MIME sniffing, a
same-origin Referrer-Policy, and `Cache-Control: no-store` on account responses (they carry tokens).

The web app's pages load only their own script and stylesheet (no inline script, no inline event
handler), so the policy is strict: everything from 'self'. Two exceptions, both documented here:

- style attributes (`style="width: 40%"` on progress bars) are allowed, as `style-src-attr
  'unsafe-inline'`: they cannot run code, and every value in them is rendered by the server;
- videos come from 'self' and, when the originals live in object storage, from that storage's origin
  (GET /videos/{id}/stream redirects the player there, and media-src applies after redirects).

The API reference pages (/docs, Swagger UI; /redoc) are FastAPI's: an inline script that loads
Swagger UI or ReDoc from cdn.jsdelivr.net. They get their own, looser policy, only on those paths:
their inline scripts are allowed by hash (computed from the page itself, so it follows FastAPI's
template), the CDN for scripts and styles, inline styles (ReDoc injects <style> elements). Those
pages show no user data. Without internet access the CDN never loads and the pages stay blank;
/openapi.json is the same description as JSON.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CDN = "https://cdn.jsdelivr.net"
NO_STORE_PREFIX = "/auth/"  # login, register, refresh and token creation return secrets
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\ssrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def app_policy(media_sources: Iterable[str] = ()) -> str:
    media = " ".join(["'self'", *media_sources])
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self'",
            f"media-src {media}",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def docs_policy(html: bytes) -> str:
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(html)
    ]
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {' '.join([*hashes, CDN])}",
            f"style-src 'unsafe-inline' {CDN} https://fonts.googleapis.com",
            "font-src https://fonts.gstatic.com",
            "img-src 'self' data: https://fastapi.tiangolo.com",
            "connect-src 'self'",
            "worker-src blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def origin_of(url: str | None) -> str | None:
    """scheme://host[:port] of a URL (a presigned blob URL), or None."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


class SecurityHeaders:
    """Adds the headers to every HTTP response; a header a route set itself is kept."""

    def __init__(self, app: ASGIApp, media_sources: Iterable[str] = (), docs_paths: Iterable[str] = ()):
        self.app = app
        self.policy = app_policy(media_sources)
        self.docs_paths = frozenset(p for p in docs_paths if p)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.docs_paths:
            await self._docs(scope, receive, send)
            return
        no_store = path.startswith(NO_STORE_PREFIX)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self._headers(message, self.policy, no_store)}
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Holds the (small) page back to hash its inline scripts into the policy."""
        start: Message | None = None
        body = bytearray()

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if not message.get("more_body", False):
                await send({**start, "headers": self._headers(start, docs_policy(bytes(body)), False)})
                await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, buffered)

    @staticmethod
    def _headers(start: Message, policy: str, no_store: bool) -> list[tuple[bytes, bytes]]:
        headers = [
            (k, v) for k, v in start.get("headers", []) if not (no_store and k.lower() == b"cache-control")
        ]
        present = {k.lower() for k, _ in headers}
        for name, value in (
            (b"content-security-policy", policy),
            (b"x-frame-options", "DENY"),
            (b"x-content-type-options", "nosniff"),
            (b"referrer-policy", "same-origin"),
        ):
            if name not in present:
                headers.append((name, value.encode()))
        if no_store:
            headers.append((b"cache-control", b"no-store"))
        return headers
