"""Accounts: users, password hashing, access/refresh/personal tokens and login rate limiting."""

from heimdex.accounts.base import AccountStore, ApiToken, User, open_account_store
from heimdex.accounts.service import Accounts, AuthError, Session

__all__ = ["AccountStore", "Accounts", "ApiToken", "AuthError", "Session", "User", "open_account_store"]
