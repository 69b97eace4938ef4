"""Session cookies for the web app, and the ASGI middleware that renews them and counts responses."""

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


def session_cookies(session: Session, settings: Settings) -> list[str]:
    return [
        _cookie(ACCESS_COOKIE, session.access_token, session.expires_in, settings.cookie_secure),
        _cookie(
            REFRESH_COOKIE, session.refresh_token, settings.refresh_token_days * 86400, settings.cookie_secure
        ),
    ]


def cleared_cookies(settings: Settings) -> list[str]:
    return [
        _cookie(ACCESS_COOKIE, "", 0, settings.cookie_secure),
        _cookie(REFRESH_COOKIE, "", 0, settings.cookie_secure),
    ]


class SessionMiddleware:
    """Sets renewed session cookies (request.state.new_session) on the way out; counts statuses."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.http.inc(f"{message['status'] // 100}xx")
                session = scope.get("state", {}).get("new_session")
                if session is not None:
                    headers = list(message.get("headers", []))
                    headers += [(b"set-cookie", c.encode()) for c in session_cookies(session, self.settings)]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, wrapped)
