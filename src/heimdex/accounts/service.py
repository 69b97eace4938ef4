"""Registration, login, token issue and verification.

- Access tokens: JWT (HS256, signed with the server's secret key), short-lived, stateless.
- Refresh tokens: opaque random strings stored as digests; each use consumes it and issues a new
  pair (rotation) in the same family (one login = one family). A used token is kept as "used"
  until it expires: presenting it again (after a short grace for two tabs refreshing at once) means
  it was copied, and the whole family is deleted (reuse detection). Logout deletes the family.
- Revocation: each user has a token generation, carried by access tokens (claim "gen"). Changing
  the password or logging out everywhere bumps it (old access tokens stop working at once) and
  deletes the user's refresh tokens and, for a password change, personal API tokens.
- Personal API tokens: opaque `hdx_...` strings for scripts, stored as digests, revocable.
- Optionally, JWTs from an external identity provider (HS256 secret or JWKS), mapped to a local
  user by email (created on first sight).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

from heimdex.accounts.base import AccountStore, ApiToken, User
from heimdex.accounts.passwords import hash_password, needs_rehash, verify_password
from heimdex.accounts.ratelimit import RateLimiter
from heimdex.errors import ConflictError, HeimdexError, NotFoundError
from heimdex.logging import get_logger, register_secrets
from heimdex.settings import Settings

log = get_logger(__name__)

API_TOKEN_PREFIX = "hdx_"
REFRESH_PREFIX = "hdr_"
ISSUER = "heimdex"
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class AuthError(HeimdexError):
    """Missing, invalid or expired credentials (401)."""


class ForbiddenError(HeimdexError):
    """Authenticated, but not allowed (403)."""


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User


@dataclass(frozen=True)
class Registration:
    """What POST /auth/register did. `session` is None when the address already had an account and
    the password was not its owner's: nothing was created and nobody is logged in."""

    session: Session | None
    created: bool


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def resolve_secret_key(settings: Settings) -> str:
    """The configured secret, or one generated on first start and kept (mode 600) under home."""
    if settings.secret_key:
        return settings.secret_key.get_secret_value()
    path = Path(settings.home) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_text().strip()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email) or len(email) > 254:
        raise HeimdexError("enter a valid email address")
    return email


class Accounts:
    def __init__(self, settings: Settings, store: AccountStore) -> None:
        self.settings = settings
        self.store = store
        self.secret = resolve_secret_key(settings)
        register_secrets([self.secret, *settings.secret_values()])
        self.login_limiter = RateLimiter(settings.login_attempts_per_minute, 60.0)
        self.register_limiter = RateLimiter(settings.register_attempts_per_hour, 3600.0)
        self._jwks = (
            jwt.PyJWKClient(settings.external_jwt_jwks_url) if settings.external_jwt_jwks_url else None
        )

    # ------------------------------------------------------------ users
    @staticmethod
    def _check_password(password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise HeimdexError(f"the password must have at least {MIN_PASSWORD} characters")

    def create_user(self, email: str, password: str, is_admin: bool = False) -> User:
        self._check_password(password)
        user = self.store.create_user(normalise_email(email), hash_password(password), is_admin)
        log.info("user.created", user_id=user.id, admin=is_admin)
        return user

    def users(self) -> list[User]:
        return self.store.list_users()

    def user(self, user_id: str) -> User:
        """NotFoundError when there is no such account."""
        return self.store.get_user(user_id)

    def user_by_email(self, email: str) -> User | None:
        return self.store.find_user_by_email(email.strip().lower())

    def register(self, email: str, password: str, client: str) -> Registration:
        """Create an account and log it in, without telling whether the address was taken.

        A taken address is not an error (a 409 would tell anyone which addresses have accounts):
        with its owner's password it logs in; otherwise nothing is created, nobody is logged in and
        the answer (session None) says nothing about the address. Both paths cost one Argon2 hash;
        registrations are limited per client address, and on a taken address they count as login
        attempts for it, so registration is no way around the login limit.
        """
        if not self.settings.allow_registration:
            raise ForbiddenError("registration is closed on this server; ask an administrator")
        self._check_password(password)
        email = normalise_email(email)
        self.register_limiter.hit(f"ip:{client}", "registrations from this address")
        existing = self.store.find_user_by_email(email)
        if existing is None:
            first = not self.store.list_users()  # the very first account administers the server
            try:
                return Registration(self.issue(self.create_user(email, password, is_admin=first)), True)
            except ConflictError:  # registered by a concurrent request in between
                existing = self.store.find_user_by_email(email)
                if existing is None:
                    raise
        self.login_limiter.hit(f"email:{email}", "login attempts")
        if verify_password(existing.password_hash, password):  # a dummy hash when None: same time
            return Registration(self.issue(existing), False)
        log.info("register.taken", client=client)
        return Registration(None, False)

    def login(self, email: str, password: str, client: str) -> Session:
        email = email.strip().lower()
        # Both keys: one address cannot guess many accounts, many addresses cannot guess one.
        self.login_limiter.hit(f"ip:{client}", "login attempts")
        self.login_limiter.hit(f"email:{email}", "login attempts")
        user = self.store.find_user_by_email(email)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            log.info("login.failed", client=client)
            raise AuthError("wrong email or password")
        if user.password_hash and needs_rehash(user.password_hash):
            self.store.set_password(user.id, hash_password(password))
        self.login_limiter.reset(f"email:{email}")
        return self.issue(user)

    def change_password(self, user: User, current: str, new: str) -> Session:
        """Change the caller's password, ending every session and API token of theirs; the new
        session returned keeps the caller logged in here."""
        if not user.password_hash:
            raise HeimdexError(
                "this account signs in through an external identity provider: it has no password here"
            )
        self.login_limiter.hit(f"email:{user.email}", "password attempts")  # no guessing through here
        if not verify_password(user.password_hash, current):
            raise ForbiddenError("the current password is wrong")
        self.set_password(user, new)
        self.login_limiter.reset(f"email:{user.email}")
        return self.issue(self._user(user.id))

    def set_password(self, user: User, password: str) -> None:
        """Set a password (`heimdex users set-password` too): every access, refresh and personal API
        token of the user stops working, in the same transaction."""
        self._check_password(password)
        self.store.set_password(user.id, hash_password(password), revoke_tokens=True)
        log.info("user.password_changed", user_id=user.id)

    def logout_everywhere(self, user: User, *, api_tokens: bool = False) -> tuple[int, int]:
        """End every session of the user (access and refresh tokens), and with api_tokens their
        personal API tokens too. Returns (sessions, API tokens) revoked."""
        sessions, tokens = self.store.revoke_tokens(user.id, api_tokens=api_tokens)
        log.info("user.logged_out_everywhere", user_id=user.id, sessions=sessions, api_tokens=tokens)
        return sessions, tokens

    # ------------------------------------------------------------ tokens
    def issue(self, user: User, family: str | None = None) -> Session:
        """A new token pair at the user's current token generation; `family`: the session it
        continues (a refresh), else a new one (a login)."""
        now = int(time.time())
        lifetime = self.settings.access_token_minutes * 60
        access = jwt.encode(
            {
                "sub": user.id,
                "iss": ISSUER,
                "typ": "access",
                "iat": now,
                "exp": now + lifetime,
                "jti": secrets.token_hex(8),
                "gen": user.token_generation,
            },
            self.secret,
            algorithm="HS256",
        )
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
        stored = self.store.add_refresh_token(
            digest(refresh),
            user.id,
            now + self.settings.refresh_token_days * 86400,
            family=family or secrets.token_hex(12),
            generation=user.token_generation,
        )
        if not stored:  # the user's tokens were revoked (or the account deleted) meanwhile
            raise AuthError("the session was ended; log in again")
        return Session(access_token=access, refresh_token=refresh, expires_in=lifetime, user=user)

    def refresh(self, refresh_token: str) -> Session:
        use = self.store.take_refresh_token(
            digest(refresh_token), time.time(), self.settings.refresh_reuse_grace_s
        )
        if use is None:
            raise AuthError("the session has expired; log in again")
        if use.state == "reused":
            log.warning("refresh.reused", user_id=use.user_id, family=use.family)
            raise AuthError("this refresh token was used before, so the session was ended; log in again")
        return self.issue(self._user(use.user_id), family=use.family)

    def logout(self, refresh_token: str | None) -> None:
        if refresh_token:
            self.store.revoke_refresh_token(digest(refresh_token))

    def authenticate(self, token: str) -> User:
        """The user a bearer token (access JWT, personal token or external JWT) stands for."""
        if token.startswith(API_TOKEN_PREFIX):
            found = self.store.find_api_token(digest(token))
            if found is None:
                raise AuthError("unknown or revoked API token")
            return self._user(found.user_id)
        try:
            claims = jwt.decode(
                token, self.secret, algorithms=["HS256"], issuer=ISSUER, options={"require": ["exp", "sub"]}
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the access token has expired; refresh it") from exc
        except jwt.PyJWTError as exc:
            if self.settings.external_jwt_secret or self._jwks:
                return self._external_user(token)
            raise AuthError("invalid access token") from exc
        if claims.get("typ") != "access":
            raise AuthError("not an access token")
        user = self._user(claims["sub"])
        if claims.get("gen", 0) != user.token_generation:
            raise AuthError("the session was ended (password changed or logged out everywhere); log in again")
        return user

    def _user(self, user_id: str) -> User:
        try:
            return self.store.get_user(user_id)
        except NotFoundError as exc:
            raise AuthError("the account no longer exists") from exc

    def _external_user(self, token: str) -> User:
        """A JWT from the configured identity provider, mapped to the local user with its email."""
        options = {"require": ["exp", "sub"], "verify_aud": bool(self.settings.external_jwt_audience)}
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256", "ES256"]
            else:
                secret = self.settings.external_jwt_secret
                key, algorithms = (secret.get_secret_value() if secret else ""), ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self.settings.external_jwt_audience,
                issuer=self.settings.external_jwt_issuer,
                options=options,
            )
        except jwt.PyJWTError as exc:
            raise AuthError("invalid access token") from exc
        email = claims.get("email")
        if not email:
            raise AuthError("the identity provider's token carries no email")
        email = normalise_email(email)
        user = self.store.find_user_by_email(email)
        if user is None:
            user = self.store.create_user(email, None)
            log.info("user.created.external", user_id=user.id, issuer=claims.get("iss"))
        return user

    # ------------------------------------------------------------ personal API tokens
    def create_api_token(self, user: User, name: str) -> tuple[ApiToken, str]:
        """The token record and the secret, which is shown once and never stored."""
        name = name.strip()[:100] or "token"
        secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = self.store.add_api_token(user.id, name, digest(secret), secret[:8], user.token_generation)
        if record is None:  # revoked while this request was under way
            raise AuthError("the session was ended; log in again")
        return record, secret

    def api_tokens(self, user: User) -> list[ApiToken]:
        return self.store.list_api_tokens(user.id)

    def delete_api_token(self, user: User, token_id: str) -> None:
        """NotFoundError when the user has no such token."""
        self.store.delete_api_token(user.id, token_id)
