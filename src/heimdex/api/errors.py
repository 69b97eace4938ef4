"""Every error leaves the API as JSON `{"status": ..., "message": ...}`: never a traceback."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from heimdex.accounts.ratelimit import RateLimited
from heimdex.accounts.service import AuthError, ForbiddenError
from heimdex.errors import ConflictError, HeimdexError, InvalidMediaError, NotFoundError
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


def _status(exc: HeimdexError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    for kind, status in (
        (AuthError, 401),
        (ForbiddenError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (RateLimited, 429),
        (InvalidMediaError, 422),
    ):
        if isinstance(exc, kind):
            return status
    return 400


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HeimdexError)
    async def heimdex_error(request: Request, exc: HeimdexError) -> JSONResponse:
        status = _status(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(int(exc.retry_after) + 1)}
        return error_response(status, str(exc), headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

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
        return error_response(500, "internal error; the server log has the details")
