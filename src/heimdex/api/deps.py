"""Request dependencies: who is calling (bearer token or session cookie) and the shared context."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from heimdex.accounts import AuthError, User
from heimdex.accounts.service import ForbiddenError
from heimdex.api.context import AppContext
from heimdex.api.errors import LoginRequired

ACCESS_COOKIE = "heimdex_access"
REFRESH_COOKIE = "heimdex_refresh"
CSRF_HEADER = "x-heimdex-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_ctx(request: Request) -> AppContext:
    return request.app.state.ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_user(request: Request, ctx: Ctx) -> User:
    """The caller, from `Authorization: Bearer` (scripts) or the session cookie (the web app).

    Cookie-authenticated writes must carry a custom header: a cross-site form cannot set one, and
    this server answers no CORS preflight, so the header is proof the request came from our pages.
    """
    token = _bearer(request)
    if token:
        return ctx.accounts.authenticate(token)
    cookie = request.cookies.get(ACCESS_COOKIE)
    if not cookie:
        raise AuthError("log in first: send `Authorization: Bearer <token>`")
    if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
        raise ForbiddenError(f"cookie-authenticated requests that change data need the {CSRF_HEADER} header")
    return ctx.accounts.authenticate(cookie)


CurrentUser = Annotated[User, Depends(current_user)]


def page_user(request: Request, ctx: Ctx) -> User:
    """The user of a web page; an expired access cookie is renewed with the refresh cookie."""
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie:
        try:
            return ctx.accounts.authenticate(cookie)
        except AuthError:
            pass
    refresh = request.cookies.get(REFRESH_COOKIE)
    if refresh:
        try:
            session = ctx.accounts.refresh(refresh)
        except AuthError:
            pass
        else:
            request.state.new_session = session  # the session middleware sets the cookies
            return session.user
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise LoginRequired(target)


PageUser = Annotated[User, Depends(page_user)]
