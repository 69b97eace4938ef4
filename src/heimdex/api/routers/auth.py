"""Accounts: register, login, refresh, logout (here or everywhere), password, the current user,
personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from heimdex.accounts import Session
from heimdex.accounts.service import AuthError
from heimdex.api.deps import REFRESH_COOKIE, Ctx, CurrentUser
from heimdex.api.openapi import PUBLIC, errors
from heimdex.api.routers.users import user_json
from heimdex.api.session import cleared_cookies, session_cookies
from heimdex.validation import CleanText

router = APIRouter(prefix="/auth", tags=["accounts"], responses=PUBLIC)


class Credentials(BaseModel):
    email: CleanText = Field(max_length=254)
    password: str = Field(max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str | None = None


class TokenBody(BaseModel):
    name: str = Field("script", max_length=100)


class PasswordBody(BaseModel):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class LogoutAllBody(BaseModel):
    api_tokens: bool = Field(False, description="Revoke your personal API tokens too (scripts stop working).")


# The answer to a registration whose address already has an account (and a password not its
# owner's): 202, no session, and nothing that says the address is taken.
REGISTRATION_RECEIVED = (
    "registration received: if you already have an account with this address, log in with its password"
)


def _session_response(ctx, session: Session, status: int = 200) -> JSONResponse:
    body = {
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "token_type": "bearer",
        "expires_in": session.expires_in,
        "user": user_json(session.user),
    }
    response = JSONResponse(body, status_code=status)
    for cookie in session_cookies(session, ctx.settings):  # the web app uses the same call
        response.headers.append("set-cookie", cookie)
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post(
    "/register",
    status_code=201,
    summary="Create an account and log in (the first account is the admin)",
    responses={
        200: {"description": "the address had an account and this is its password: logged in"},
        202: {"description": "nothing created, nobody logged in (the address may have an account)"},
        429: {"description": "too many registrations from this address"},
    },
)
def register(body: Credentials, request: Request, ctx: Ctx) -> JSONResponse:
    """201 with a session for a new account. An address that already has an account is not an
    error, so that registration cannot be used to find out who has one: with that account's
    password it logs in (200), otherwise the answer is 202 with a neutral message and no session."""
    result = ctx.accounts.register(body.email, body.password, _client(request))
    if result.session is None:
        return JSONResponse({"status": 202, "message": REGISTRATION_RECEIVED}, status_code=202)
    return _session_response(ctx, result.session, 201 if result.created else 200)


@router.post(
    "/login",
    summary="Exchange email and password for an access and a refresh token",
    responses=errors(401, 429, _401="wrong email or password"),
)
def login(body: Credentials, request: Request, ctx: Ctx) -> JSONResponse:
    return _session_response(ctx, ctx.accounts.login(body.email, body.password, _client(request)))


@router.post(
    "/refresh",
    summary="A new token pair for a refresh token (which is used up)",
    responses=errors(401, _401="no refresh token, or one that is expired, used or revoked"),
)
def refresh(request: Request, ctx: Ctx, body: RefreshBody | None = None) -> JSONResponse:
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise AuthError("send the refresh_token")
    return _session_response(ctx, ctx.accounts.refresh(token))


def _logged_out(ctx, body: dict) -> JSONResponse:
    """`body`, with the session cookies cleared."""
    response = JSONResponse(body)
    for cookie in cleared_cookies(ctx.settings):
        response.headers.append("set-cookie", cookie)
    return response


@router.post("/logout", summary="Revoke the refresh token and clear the session cookies")
def logout(request: Request, ctx: Ctx, body: RefreshBody | None = None) -> JSONResponse:
    ctx.accounts.logout((body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE))
    return _logged_out(ctx, {"status": "logged out"})


@router.post(
    "/logout-all",
    summary="Log out everywhere: end every session (access and refresh tokens) of yours",
    responses=errors(401, 403),
)
def logout_all(user: CurrentUser, ctx: Ctx, body: LogoutAllBody | None = None) -> JSONResponse:
    """Every access and refresh token of yours stops working, this session's too (its cookies are
    cleared). Personal API tokens are separate credentials for scripts and keep working unless
    `api_tokens` is true."""
    sessions, tokens = ctx.accounts.logout_everywhere(user, api_tokens=bool(body and body.api_tokens))
    return _logged_out(ctx, {"status": "logged out everywhere", "sessions": sessions, "api_tokens": tokens})


@router.post(
    "/password",
    summary="Change your password: every other session and every API token of yours ends",
    responses=errors(
        401, 403, _403="the current password is wrong, or a cookie write without the CSRF header"
    ),
)
def change_password(body: PasswordBody, user: CurrentUser, ctx: Ctx) -> JSONResponse:
    """Returns a new session (and cookies) so that you stay logged in here; every earlier access,
    refresh and personal API token of yours stops working."""
    return _session_response(
        ctx, ctx.accounts.change_password(user, body.current_password, body.new_password)
    )


@router.get("/me", summary="The current user", responses=errors(401))
def me(user: CurrentUser) -> dict:
    return user_json(user)


@router.post(
    "/tokens",
    status_code=201,
    summary="Create a personal API token (its secret is shown once)",
    responses=errors(401, 403),
)
def create_token(body: TokenBody, user: CurrentUser, ctx: Ctx) -> dict:
    record, secret = ctx.accounts.create_api_token(user, body.name)
    return {**record.model_dump(), "token": secret}


@router.get("/tokens", summary="Your personal API tokens (without their secrets)", responses=errors(401))
def list_tokens(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return [t.model_dump() for t in ctx.accounts.api_tokens(user)]


@router.delete(
    "/tokens/{token_id}",
    status_code=204,
    summary="Revoke a personal API token",
    responses=errors(401, 403, 404),
)
def delete_token(token_id: str, user: CurrentUser, ctx: Ctx) -> None:
    ctx.accounts.delete_api_token(user, token_id)
