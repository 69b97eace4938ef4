"""Session cookies for the web app, and the ASGI middleware that renews them and counts responses.

Cookies are `Secure` when `cookie_secure` is set or when the request itself came over HTTPS: directly,
or through a trusted reverse proxy that said so in X-Forwarded-Proto (uvicorn's proxy headers then
make the request's scheme "https"). The middleware marks every cookie of such a response Secure, so
the routes that set cookies need not know the scheme.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heimdex.accounts import Session
from heimdex.api.deps import ACCESS_COOKIE, REFRESH_COOKIE
from heimdex.api.metrics import Metrics
from heimdex.settings import Settings


def _cookie(name: str, value: str, max_age: int, secure: bool) -> str:
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["max-age"] = max_age
    morsel["httponly"] = True  # page scripts never need the tokens: the browser sends them
    morsel["samesite"] = "Lax"
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def session_cookies(session: Session, settings: Settings, https: bool = False) -> list[str]:
    secure = settings.cookie_secure or https
    return [
        _cookie(ACCESS_COOKIE, session.access_token, session.expires_in, secure),
        _cookie(REFRESH_COOKIE, session.refresh_token, settings.refresh_token_days * 86400, secure),
    ]


def cleared_cookies(settings: Settings) -> list[str]:
    return [
        _cookie(ACCESS_COOKIE, "", 0, settings.cookie_secure),
        _cookie(REFRESH_COOKIE, "", 0, settings.cookie_secure),
    ]


def _secure(header: bytes) -> bytes:
    attributes = {part.strip().split(b"=", 1)[0].lower() for part in header.split(b";")[1:]}
    return header if b"secure" in attributes else header + b"; Secure"


class SessionMiddleware:
    """Sets renewed session cookies (request.state.new_session) on the way out, marks cookies
    Secure over HTTPS, and counts responses by status class (an unhandled error counts as 5xx)."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        https = scope.get("scheme") == "https"
        started = False

        async def wrapped(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.metrics.http.inc(f"{message['status'] // 100}xx")
                headers = list(message.get("headers", []))
                session = scope.get("state", {}).get("new_session")
                if session is not None:
                    cookies = session_cookies(session, self.settings, https)
                    headers += [(b"set-cookie", c.encode()) for c in cookies]
                if https:
                    headers = [(k, _secure(v) if k.lower() == b"set-cookie" else v) for k, v in headers]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except Exception:
            if not started:  # the outermost handler answers 500, past this middleware
                self.metrics.http.inc("5xx")
            raise
