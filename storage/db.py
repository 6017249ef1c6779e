"""Engine and session factory: SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

DEFAULT_URL = "sqlite+aiosqlite:///ledgerops.db"


@dataclass
class Database:
    """The engine and a session factory for one database."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; NORMAL sync is safe with WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def connect(url: str = DEFAULT_URL, *, echo: bool = False, pool_size: int = 10) -> Database:
    """Open a database from an SQLAlchemy async URL."""
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": False}
    if url.startswith("sqlite"):
        # The default SQLite pool for files is a queue pool; a few connections
        # serve readers while writes serialize on SQLite's lock.
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return Database(engine=engine, sessions=async_sessionmaker(engine, expire_on_commit=False))
