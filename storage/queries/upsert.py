"""The one place that knows SQLite from PostgreSQL: their ``INSERT ... ON CONFLICT``.

Both dialects spell an upsert the same way in SQLAlchemy, but through their own
``insert`` construct; every upsert in storage/ starts here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

#: a synchronous connection or session, as the hot queries run them
Executor = Connection | Session


def dialect_name(on: Executor | AsyncSession) -> str:
    """``"postgresql"`` or ``"sqlite"``: the database ``on`` talks to."""
    if isinstance(on, Connection):
        return on.dialect.name
    return on.get_bind().dialect.name


def upsert_into(on: Executor | AsyncSession | str, table: Any) -> Any:
    """An ``INSERT`` into ``table`` that takes ``on_conflict_do_*`` for the database ``on``.

    ``on`` is a connection, a session or a dialect name.
    """
    name = on if isinstance(on, str) else dialect_name(on)
    return (pg_insert if name == "postgresql" else sqlite_insert)(table)
