"""Every error leaves the API as JSON `{"status": ..., "message": ...}`: never a traceback."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heimdex.accounts.ratelimit import RateLimited
from heimdex.accounts.service import AuthError, ForbiddenError
from heimdex.errors import ConflictError, HeimdexError, InvalidMediaError, InvalidRequestError, NotFoundError
from heimdex.logging import get_logger

log = get_logger(__name__)


class ApiError(HeimdexError):
    """An error with an explicit HTTP status (413, 415, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LoginRequired(Exception):
    """A web page was asked for without a session: redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


def error_status(exc: HeimdexError) -> int:
    """The HTTP status of one of our errors (the API and the web app answer alike)."""
    if isinstance(exc, ApiError):
        return exc.status
    for kind, status in (
        (AuthError, 401),
        (ForbiddenError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (RateLimited, 429),
        (InvalidMediaError, 422),
        (InvalidRequestError, 422),
    ):
        if isinstance(exc, kind):
            return status
    return 400


INTERNAL_ERROR = "internal error; the server log has the details"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request, fallback: str) -> str:
    """The methods /openapi.json documents for the path that answered 405. Starlette's header lists
    only the first route of the path, and GET /videos/{id} and DELETE /videos/{id} are two routes."""
    template = getattr(request.scope.get("route"), "path_format", None)
    documented = request.app.openapi().get("paths", {}).get(template) if template else None
    if not documented:  # a web page or static file: one route, whose own header is complete
        return fallback
    return ", ".join(m for m in METHODS if m.lower() in documented)


class UnhandledErrors:
    """Turns an exception no handler took into the JSON 500 *inside* the middleware stack.

    Starlette runs the `Exception` handler in its outermost middleware, so a 500 made there passes
    none of ours: it was neither counted in /metrics nor given the security headers. The handler
    installed below stays as the last resort for an error raised by a middleware itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started:  # too late for another response: the server closes the connection
                raise
            log.error(
                "api.unhandled", path=scope.get("path"), error=f"{type(exc).__name__}: {exc}", exc_info=exc
            )
            await error_response(500, INTERNAL_ERROR)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeimdexError)
    async def heimdex_error(request: Request, exc: HeimdexError) -> JSONResponse:
        status = error_status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(int(exc.retry_after) + 1)}
        return error_response(status, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        if exc.status_code == 405:
            # Starlette's StaticFiles refuses all but GET and HEAD without saying so
            headers["Allow"] = _allowed_methods(request, headers.get("Allow") or "GET, HEAD")
            message = f"{request.method} is not allowed here; use {headers['Allow']}"
        return error_response(exc.status_code, message, headers or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid"))
        return error_response(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(exc.next_url)}", status_code=303)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unhandled", path=request.url.path, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        return error_response(500, INTERNAL_ERROR)
