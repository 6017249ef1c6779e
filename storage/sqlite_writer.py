"""Group commit for SQLite: the worker's small transactions share one commit.

Every company's worker asks for one short transaction per posting (record the
outcome, claim the next). SQLite has one writer and a commit is the expensive
part, so the writer thread takes everything queued while it was busy and runs
it in one transaction. Should any function in a batch raise, the batch is
rolled back and each function runs again in a transaction of its own, so one
function's failure never undoes another's work, and every caller learns only
its own outcome, after its commit.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

T = TypeVar("T")
Job = tuple[Callable[[Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop]

#: at most this many functions share a commit (bounds the work a rollback repeats)
MAX_BATCH = 64


class SqliteWriter:
    """Runs synchronous transaction functions on one thread, batching their commits."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._lock = threading.Lock()
        self._queue: list[Job] = []
        self._draining = False

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn(connection)`` in a committed transaction; its result once committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._queue.append((fn, future, loop))
            start = not self._draining
            self._draining = True
        if start:
            self._executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not batch:
                    self._draining = False
                    return
            for (_, future, loop), outcome in zip(batch, self._commit(batch), strict=True):
                loop.call_soon_threadsafe(_settle, future, outcome)

    def _commit(self, batch: list[Job]) -> list[tuple[bool, Any]]:
        if len(batch) > 1:
            try:
                with self.engine.begin() as conn:
                    results = [(True, fn(conn)) for fn, _, _ in batch]
                return results
            except Exception:  # someone's function failed: give each its own transaction
                pass
        outcomes: list[tuple[bool, Any]] = []
        for fn, _, _ in batch:
            try:
                with self.engine.begin() as conn:
                    outcomes.append((True, fn(conn)))
            except BaseException as exc:  # handed to the caller, raised there
                outcomes.append((False, exc))
        return outcomes

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)


def _settle(future: asyncio.Future[Any], outcome: tuple[bool, Any]) -> None:
    if future.cancelled():
        return
    ok, value = outcome
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
