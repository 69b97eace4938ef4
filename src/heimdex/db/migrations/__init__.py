"""Alembic migrations of the PostgreSQL schema, run by `heimdex migrate` (heimdex.store.postgres.migrate)."""
