"""What the SQL stores program against: a database with transactions, and its dialect.

Queries are written once, with `?` placeholders, and read rows by column name. The few things that
SQLite and PostgreSQL spell differently are the dialect's: the placeholder, a list parameter, the
clock, vectors, text aggregation, byte-order collation and the unique-violation error.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

Row = Mapping[str, Any]


class Session(ABC):
    """One connection, inside or outside a transaction."""

    @abstractmethod
    def execute(self, query: Any, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the driver's cursor (rowcount, fetchone, fetchall)."""

    @abstractmethod
    def many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""

    def one(self, query: Any, params: Sequence[Any] = ()) -> Row | None:
        return self.execute(query, params).fetchone()

    def all(self, query: Any, params: Sequence[Any] = ()) -> list[Row]:
        return self.execute(query, params).fetchall()


class Database(ABC):
    """Connections to one database, and how its SQL differs from the other's."""

    # The byte-order collation for ORDER BY on text (SQLite compares bytes already).
    collate_c: str = ""
    # Raised by the driver when an insert or update breaks a UNIQUE constraint.
    unique_violation: type[Exception] | tuple[type[Exception], ...] = ()

    @abstractmethod
    def tx(self) -> AbstractContextManager[Session]:
        """A transaction that commits when the block ends and rolls back if it raises."""

    @abstractmethod
    def session(self) -> AbstractContextManager[Session]:
        """A connection for reads (each statement on its own)."""

    def pinned(self) -> AbstractContextManager[None]:
        """Every statement the block runs on this thread goes through one connection (a search's ~20
        statements pay one checkout from the pool, not twenty). SQLite keeps one per thread anyway."""
        return nullcontext()

    @abstractmethod
    def close(self) -> None: ...

    def one(self, query: Any, params: Sequence[Any] = ()) -> Row | None:
        with self.session() as s:
            return s.one(query, params)

    def all(self, query: Any, params: Sequence[Any] = ()) -> list[Row]:
        with self.session() as s:
            return s.all(query, params)

    # ------------------------------------------------------------ dialect
    @abstractmethod
    def now(self) -> str:
        """SQL for the database's clock in seconds since the epoch: leases are judged by it."""

    @abstractmethod
    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """(condition, params) for `column` being one of `values` (never empty)."""

    @abstractmethod
    def joined(self, expression: str, separator: str, order: str = "") -> str:
        """SQL aggregating text `expression` joined by `separator` (a literal), in `order` where the
        database can order an aggregate (SQLite joins in the order rows arrive)."""

    @abstractmethod
    def vector(self, values: Any) -> Any:
        """A parameter holding a float32 vector."""

    @abstractmethod
    def matrix(self, rows: Sequence[Row], column: str, dim: int) -> np.ndarray:
        """Stack the vectors in `column` of `rows` into an (n, dim) float32 matrix."""


def loads(value: Any) -> Any:
    """A JSON column as Python: SQLite returns the text, PostgreSQL's jsonb the value."""
    return json.loads(value) if isinstance(value, str | bytes) else value
