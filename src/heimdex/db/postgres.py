"""PostgreSQL: URLs, connection pools, the Alembic schema, and the dialect.

The schema of both stores (metadata and accounts) is owned by Alembic (db/migrations): `migrate(url)`
upgrades to head, and a store refuses to open a database that is behind unless it was asked to
migrate it itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from heimdex.db.base import Database, Row, Session
from heimdex.errors import HeimdexError

MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic's command API swaps module globals (alembic.context, alembic.op): one run per process at a
# time. Processes are serialised by an advisory lock in migrations/env.py.
_MIGRATE_LOCK = threading.Lock()


# ---------------------------------------------------------------- URLs


def libpq_url(url: str) -> str:
    """postgresql://... for psycopg (also accepts postgres:// and postgresql+psycopg://)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return f"postgresql://{rest}"


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + libpq_url(url).split("://", 1)[1]


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# ---------------------------------------------------------------- migrations


def alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config()  # built in code: an installed package carries no alembic.ini
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.attributes["url"] = sqlalchemy_url(url)  # attributes: no ConfigParser '%' interpolation
    return cfg


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the packaged migrations have no head"
    return head


def migrate(url: str) -> str:
    """Upgrade the database at `url` to the newest schema and return its revision (`heimdex migrate`)."""
    from alembic import command

    try:
        with _MIGRATE_LOCK:
            command.upgrade(alembic_config(url), "head")
    except Exception as exc:  # sqlalchemy/psycopg errors: say which database and why, briefly
        raise HeimdexError(f"could not migrate the PostgreSQL database {redact(url)}: {exc}") from exc
    return head_revision()


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database is at; None when Heimdex's schema was never created there."""
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def check_schema(url: str) -> None:
    current, head = schema_revision(url), head_revision()
    if current != head:
        found = "has no Heimdex schema" if current is None else f"is at schema revision {current}"
        raise HeimdexError(
            f"the PostgreSQL database {redact(url)} {found}, this Heimdex needs revision {head}:"
            " run `heimdex migrate` first"
        )


def open_schema(url: str, auto_migrate: bool) -> str:
    """The libpq URL of a database at the newest schema: migrated here, or checked to be."""
    url = libpq_url(url)
    if auto_migrate:
        migrate(url)
    else:
        check_schema(url)
    return url


# ---------------------------------------------------------------- connections


def connect(url: str) -> psycopg.Connection:
    try:
        return psycopg.connect(libpq_url(url), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise HeimdexError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc


def open_pool(
    url: str,
    name: str,
    min_size: int,
    max_size: int,
    configure: Callable[[psycopg.Connection], None] | None = None,
) -> ConnectionPool:
    """An open pool of autocommit connections returning dict rows, checked before each use so that
    a server restart costs one failed check, not a failed request."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        configure=configure,
        check=ConnectionPool.check_connection,
        name=name,
        open=False,
    )
    try:
        pool.open(wait=True, timeout=30)
    except Exception as exc:
        pool.close()
        raise HeimdexError(f"cannot connect to PostgreSQL at {redact(url)}: {exc}") from exc
    return pool


@lru_cache(maxsize=1024)
def placeholders(query: str) -> str:
    """A query written with `?` placeholders in psycopg's `%s` style (a literal % doubled)."""
    return query.replace("%", "%%").replace("?", "%s")


def _translated(query: Any) -> Any:
    return placeholders(query) if isinstance(query, str) else query  # psycopg.sql objects pass


class _PostgresSession(Session):
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def execute(self, query: Any, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.conn.execute(_translated(query), params)

    def many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(_translated(query), rows)

    def binary(self, query: Any, params: Sequence[Any] = ()) -> list[Row]:
        """Rows fetched in binary: vectors arrive as pgvector values without text parsing."""
        with self.conn.cursor(binary=True) as cur:
            return cur.execute(_translated(query), params).fetchall()


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database; vectors as pgvector values."""

    collate_c = ' COLLATE "C"'
    unique_violation = psycopg.errors.UniqueViolation

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._pinned = threading.local()  # .conn: the connection this thread's block holds

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        conn = getattr(self._pinned, "conn", None)
        if conn is not None:
            yield conn
            return
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def pinned(self) -> Iterator[None]:
        if getattr(self._pinned, "conn", None) is not None:  # already inside one: keep it
            yield
            return
        # The pool checks a connection when it hands it out (a round trip): once for the block.
        with self.pool.connection() as conn:
            self._pinned.conn = conn
            try:
                yield
            finally:
                self._pinned.conn = None

    @contextmanager
    def tx(self) -> Iterator[_PostgresSession]:
        with self._connection() as conn, conn.transaction():
            yield _PostgresSession(conn)

    @contextmanager
    def session(self) -> Iterator[_PostgresSession]:
        with self._connection() as conn:
            yield _PostgresSession(conn)

    def binary(self, query: Any, params: Sequence[Any] = ()) -> list[Row]:
        with self.session() as s:
            return s.binary(query, params)

    def close(self) -> None:
        self.pool.close()

    def now(self) -> str:
        return "extract(epoch from clock_timestamp())"

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def joined(self, expression: str, separator: str, order: str = "") -> str:
        return f"string_agg({expression}, {separator}{' ORDER BY ' + order if order else ''})"

    def vector(self, values: Any) -> np.ndarray:
        return np.ascontiguousarray(values, dtype=np.float32).reshape(-1)

    def matrix(self, rows: Sequence[Row], column: str, dim: int) -> np.ndarray:
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        return np.stack([r[column].to_numpy() for r in rows]).astype(np.float32, copy=False)
