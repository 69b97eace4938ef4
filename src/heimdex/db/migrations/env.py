"""Alembic environment for Heimdex's PostgreSQL schema.

The Config is built in code by heimdex.db.postgres (no alembic.ini ships with the package): the
database URL arrives in `config.attributes["url"]` (a SQLAlchemy URL, postgresql+psycopg://...).
Migrations are raw SQL (op.execute), so there is no SQLAlchemy metadata to autogenerate from.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Any constant works; it only has to be the same for every process that migrates this database.
MIGRATION_LOCK_ID = 0x48454D44  # "HEMD"


def _url() -> str:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the Heimdex migration environment")
    return url


def run_offline() -> None:
    context.configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, transaction_per_migration=False)
            with context.begin_transaction():
                # Two servers starting at once must not both apply the same migration: the second waits
                # here, then finds the database already at head and does nothing.
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
