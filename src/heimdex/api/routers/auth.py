"""Accounts: register, login, refresh, logout, the current user, personal API tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from heimdex.accounts import Session
from heimdex.accounts.service import AuthError
from heimdex.api.deps import REFRESH_COOKIE, Ctx, CurrentUser
from heimdex.api.session import cleared_cookies, session_cookies

router = APIRouter(prefix="/auth", tags=["accounts"])


class Credentials(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class RefreshBody(BaseModel):
    refresh_token: str | None = None


class TokenBody(BaseModel):
    name: str = Field("script", max_length=100)


def _user_json(user) -> dict:
    return {"id": user.id, "email": user.email, "is_admin": user.is_admin, "created_at": user.created_at}


def _session_response(ctx, session: Session, status: int = 200) -> JSONResponse:
    body = {
        "access_token": session.access_token,
        "refresh_token": session.refresh_token,
        "token_type": "bearer",
        "expires_in": session.expires_in,
        "user": _user_json(session.user),
    }
    response = JSONResponse(body, status_code=status)
    for cookie in session_cookies(session, ctx.settings):  # the web app uses the same call
        response.headers.append("set-cookie", cookie)
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register", status_code=201, summary="Create an account (the first one is the admin)")
def register(body: Credentials, ctx: Ctx) -> JSONResponse:
    return _session_response(ctx, ctx.accounts.register(body.email, body.password), 201)


@router.post("/login", summary="Exchange email and password for an access and a refresh token")
def login(body: Credentials, request: Request, ctx: Ctx) -> JSONResponse:
    return _session_response(ctx, ctx.accounts.login(body.email, body.password, _client(request)))


@router.post("/refresh", summary="A new token pair for a refresh token (which is used up)")
def refresh(request: Request, ctx: Ctx, body: RefreshBody | None = None) -> JSONResponse:
    token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    if not token:
        raise AuthError("send the refresh_token")
    return _session_response(ctx, ctx.accounts.refresh(token))


@router.post("/logout", summary="Revoke the refresh token and clear the session cookies")
def logout(request: Request, ctx: Ctx, body: RefreshBody | None = None) -> JSONResponse:
    ctx.accounts.logout((body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE))
    response = JSONResponse({"status": "logged out"})
    for cookie in cleared_cookies(ctx.settings):
        response.headers.append("set-cookie", cookie)
    return response


@router.get("/me", summary="The current user")
def me(user: CurrentUser) -> dict:
    return _user_json(user)


@router.post("/tokens", status_code=201, summary="Create a personal API token (its secret is shown once)")
def create_token(body: TokenBody, user: CurrentUser, ctx: Ctx) -> dict:
    record, secret = ctx.accounts.create_api_token(user, body.name)
    return {**record.model_dump(), "token": secret}


@router.get("/tokens", summary="Your personal API tokens (without their secrets)")
def list_tokens(user: CurrentUser, ctx: Ctx) -> list[dict]:
    return [t.model_dump() for t in ctx.accounts.store.list_api_tokens(user.id)]


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a personal API token")
def delete_token(token_id: str, user: CurrentUser, ctx: Ctx) -> None:
    ctx.accounts.store.delete_api_token(user.id, token_id)
