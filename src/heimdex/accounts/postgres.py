"""Accounts in the PostgreSQL database of the server store (tables from migrations 0003 and 0004),
with a small connection pool of their own; the queries are accounts/sql.py's."""

from __future__ import annotations

from heimdex.accounts.sql import SqlAccountStore
from heimdex.db.postgres import PostgresDatabase, open_pool, open_schema


class PostgresAccountStore(SqlAccountStore):
    _for_share = " FOR SHARE"

    def __init__(self, url: str, *, auto_migrate: bool = True, max_connections: int = 4) -> None:
        # The main store migrates the same database when the server starts; `heimdex users` opens
        # only this one, so it must be able to bring the schema up by itself too (idempotent).
        self.url = open_schema(url, auto_migrate)
        super().__init__(PostgresDatabase(open_pool(self.url, "heimdex-accounts", 1, max_connections)))
