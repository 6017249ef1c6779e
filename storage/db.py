"""Engine and session factory: SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.sqlite_writer import SqliteWriter

DEFAULT_URL = "sqlite+aiosqlite:///ledgerops.db"
#: the largest BIGINT both databases store (ids, document versions)
MAX_BIGINT = 2**63 - 1
#: PostgreSQL's codes for "another transaction got there first": try again and it is gone
_RACE_SQLSTATES = {"23505", "40001", "40P01"}  # unique violation, serialization, deadlock
T = TypeVar("T")
#: the session type sync/ names in signatures, so sync/ imports no SQLAlchemy
Session = AsyncSession


@dataclass
class Database:
    """The engine and a session factory for one database.

    :meth:`run` executes a plain function in one transaction on a synchronous
    connection: the worker's hot path. On PostgreSQL it runs on the async
    engine (asyncpg under SQLAlchemy's greenlet bridge); on SQLite it runs in
    one dedicated thread with the synchronous driver, because aiosqlite pays a
    thread round trip per cursor call (about 20 per posting) and a whole
    transaction in the thread pays one; there, transactions queued together
    share one commit (:mod:`storage.sqlite_writer`).
    """

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    sync_engine: Engine | None = None
    _writer: SqliteWriter | None = field(default=None, repr=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in one transaction; commit if it returns."""
        if self._writer is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        return await self._writer.run(fn)

    async def lock_for_write(self, session: AsyncSession) -> None:
        """Make the session's transaction a writer from its first read (SQLite).

        SQLite reads outside any write lock until the first write, so two
        connections could both read "no such document" (or version 1) and both
        write. ``BEGIN IMMEDIATE`` takes the database's one write lock first; the
        other connection waits (busy timeout) and then reads what was committed.
        On PostgreSQL the reads lock their rows instead (``SELECT ... FOR UPDATE``).
        """
        if self.is_sqlite:
            await session.execute(text("BEGIN IMMEDIATE"))

    async def answers(self) -> bool:
        """``SELECT 1`` in a session of its own (the health check); raises when it does not answer."""
        async with self.sessions() as s:
            await s.execute(text("SELECT 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()
        if self._writer is not None:
            self._writer.shutdown()


def lost_race(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error meaning another transaction wrote the same rows first.

    A unique key taken by a concurrent insert, or (PostgreSQL) a deadlock or
    serialization failure: the transaction was rolled back whole, and running it
    again sees the other one's rows. Any other exception: ``False``.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig):
        return True  # SQLite
    return getattr(exc.orig, "sqlstate", None) in _RACE_SQLSTATES


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
        # SQLite has one writer. Several connections of one process would fight
        # for its lock (and sleep in its busy handler); one connection lets our
        # short transactions queue on the pool instead, without blocking the loop.
        kwargs["connect_args"] = {"timeout": 30}
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = pool_size
    engine = create_async_engine(url, **kwargs)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name != "sqlite":
        return Database(engine=engine, sessions=sessions)
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    sync_engine = create_engine(
        url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    event.listen(sync_engine, "connect", _sqlite_pragmas)
    return Database(
        engine=engine, sessions=sessions, sync_engine=sync_engine, _writer=SqliteWriter(sync_engine)
    )


class DatabaseLockError(RuntimeError):
    """The SQLite database's single-process lock cannot be taken (another process has it)."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, or ``None`` (PostgreSQL, in-memory)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    name = parsed.database or ""
    if name in ("", ":memory:") or name.startswith("file:"):
        return None
    return Path(name).resolve()


@contextmanager
def single_process_lock(url: str) -> Iterator[None]:
    """Hold the lock that keeps a SQLite database to one ledgerops process.

    An advisory ``flock`` on ``<database>.lock`` beside the file, held for the
    ``with`` block (a serving process's life). The kernel drops it when the
    process ends however it ends, so a SIGKILL never leaves a stale lock; the file
    itself stays. Raises :class:`DatabaseLockError` naming the holder's pid when
    another process has it. PostgreSQL needs no lock: replicas share it.
    """
    path = sqlite_file(url)
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = lock_path.open("a+", encoding="ascii")
    except OSError as exc:
        raise DatabaseLockError(f"cannot open {lock_path}: {exc.strerror}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        pid = f" (pid {holder})" if holder.isdigit() else ""
        raise DatabaseLockError(
            f"another ledgerops process is using {path}{pid}; SQLite is for one process "
            "— stop it first, or use PostgreSQL for replicas"
        ) from None
    # Opened without truncating, so a refused process could still read the holder's pid.
    with handle:
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
