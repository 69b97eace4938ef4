"""Connections to the SQL databases, shared by the metadata store and the account store.

`Database` (base.py) is what both stores program against: transactions, reads, and the few things
SQLite and PostgreSQL spell differently (a dialect). sqlite.py and postgres.py each implement it;
no store backend imports another.
"""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A short random id for rows that users see (videos, people, users, tokens)."""
    return uuid.uuid4().hex[:16]
