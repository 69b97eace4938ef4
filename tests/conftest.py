"""Fixtures shared by every test folder.

`store` runs each test once per backend: the embedded SQLite store and the PostgreSQL + pgvector
store. The PostgreSQL server is started by the tests themselves (tests/services.py); if it cannot
start, the postgres tests fail with the reason: they are never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from heimdex.store import Store
from heimdex.store.sqlite import SqliteStore
from tests import services


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """One database per test module; `store` empties it before each test."""
    with services.fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "h.db")
    else:
        from heimdex.store.postgres import PostgresStore

        url = request.getfixturevalue("postgres_database")
        services.empty_database(url)
        s = PostgresStore(url, max_connections=4)
    yield s
    s.close()
