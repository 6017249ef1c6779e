"""Claims due postings per company, hands each to the synchronizer, records the outcome.

The leases and the claim loop live here; one try against the ledger is
``sync/synchronizer.py``, writing its outcome ``sync/outcomes.py``.

One posting of a company is in flight at a time (a lease row in the database,
so it holds across processes); companies run in parallel up to ``concurrency``.
A create that may have reached the ledger without an answer marks the posting
look-up-first, so the next try finds the record by its idempotency key instead
of writing a second one. A crash leaves the posting ``in_flight`` with an
expiring lease; the stuck sweeper turns it into look-up-first the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from storage.db import Connection
from storage.queries.postings import (
    acquire_lease,
    claim_next,
    due_companies,
    extend_lease,
    recover_stuck,
    release_due_retries,
    release_lease,
)
from sync.changes import AttemptObserved
from sync.engine import Engine
from sync.outcomes import LeaseLost, record
from sync.synchronizer import Report, Synchronizer

log = logging.getLogger(__name__)


class Worker:
    """Sends due postings; run one per process (replicas coordinate through leases)."""

    def __init__(self, engine: Engine, *, holder: str | None = None):
        self.engine = engine
        cfg = engine.worker_config
        self.concurrency = cfg.concurrency
        self.lease = timedelta(seconds=cfg.lease_seconds)
        self.poll_seconds = cfg.poll_seconds
        self.call_timeout = cfg.call_timeout_seconds
        self.synchronizer = Synchronizer(engine, self.call_timeout)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._main: asyncio.Task[None] | None = None
        engine.on_work(self._wake.set)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._main = asyncio.create_task(self.run(), name="ledgerops-worker")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._main:
            await self._main
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:
                log.exception("worker tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)

    async def tick(self) -> int:
        """One round: release due retries, recover stuck postings, start company drains."""
        now = self.engine.clock()
        free = self.concurrency - len(self._running)
        busy = frozenset(self._running)

        def sweep(conn: Connection) -> tuple[list[int], list[str]]:
            release_due_retries(conn, now)
            recovered = recover_stuck(conn, now)
            return recovered, due_companies(conn, now, free, busy) if free > 0 else []

        recovered, companies = await self.engine.db.run(sweep)
        if recovered:
            log.warning("recovered stuck postings", extra={"postings": recovered})
        for company in companies:
            task = asyncio.create_task(self._drain(company), name=f"drain:{company}")
            self._running[company] = task
            task.add_done_callback(partial(self._finished, company))
        return len(companies)

    def _finished(self, company: str, _drained: asyncio.Task[None]) -> None:
        self._running.pop(company, None)
        self._wake.set()  # its queue may have more, or another company waits for a slot

    async def run_until_idle(self, max_rounds: int = 100000) -> None:
        """Work until nothing is due (tests and benchmarks)."""
        for _ in range(max_rounds):
            started = await self.tick()
            if self._running:
                await asyncio.gather(*list(self._running.values()), return_exceptions=True)
                continue
            if not started:
                return

    # -- one company --------------------------------------------------------------------
    async def _drain(self, company: str) -> None:
        """Send the company's due postings one at a time, in queue order.

        Recording one posting's outcome and claiming the next share a
        transaction: one commit per posting on the hot path.
        """
        db = self.engine.db
        now = self.engine.clock()
        token = uuid.uuid4().hex  # fences this drain's writes (see storage.queries.postings.settle)
        claimed = await db.run(partial(self._start, company=company, token=token, now=now))
        if claimed is False:
            return
        hold: datetime | None = None
        renewed = now
        try:
            while claimed is not None:
                step = await self._send_one(company, token, claimed, renewed)
                if step is None:
                    return
                claimed, report, renewed = step
                hold = report.hold_company_until
        finally:
            await db.run(lambda conn: release_lease(conn, company, self.holder, hold))

    def _start(self, conn: Connection, *, company: str, token: str, now: datetime) -> Any | None:
        """Take the company's lease and claim its first posting (``False``: someone holds it)."""
        if not acquire_lease(conn, company, self.holder, now, now + self.lease):
            return False
        recover_stuck(conn, now, company)
        return claim_next(conn, company, now, now + self.lease, token)

    async def _send_one(
        self, company: str, token: str, row: Any, renewed: datetime
    ) -> tuple[Any | None, Report, datetime] | None:
        """Try one claimed posting, record it and claim the next: (next, report, lease renewed at).

        ``None`` when another drain took the posting over while we waited for the ledger:
        its outcome is that drain's to record, and the company is its now.
        """
        clock = self.engine.clock
        started = clock()
        report = await self.synchronizer.attempt(row)
        finished = clock()
        extend = finished - renewed > self.lease / 3
        step = partial(
            self._record_and_claim,
            company=company,
            token=token,
            row=row,
            report=report,
            started=started,
            finished=finished,
            extend=extend,
        )
        try:
            claimed = await self.engine.db.run(step)
        except LeaseLost:
            log.warning(
                "posting taken over; outcome not recorded", extra={"company": company, "posting": row.id}
            )
            return None
        observed = AttemptObserved(
            row.integration, report.operation, report.outcome, (finished - started).total_seconds()
        )
        for listener in self.engine.attempt_listeners:
            listener(observed)
        self._publish(report)
        return claimed, report, finished if extend else renewed

    def _record_and_claim(
        self,
        conn: Connection,
        *,
        company: str,
        token: str,
        row: Any,
        report: Report,
        started: datetime,
        finished: datetime,
        extend: bool,
    ) -> Any:
        """Record one outcome and claim the company's next posting, in one transaction.

        Returns the next claimed row, or ``None`` when the company's turn ends. Typed
        ``Any`` (claimed rows are untyped) so ``_drain`` may still read the row it sent
        when this raises :class:`LeaseLost`.
        """
        self._record(conn, row, token, report, started, finished)
        if report.hold_company_until is not None or self._stopping:
            return None
        if extend and not extend_lease(conn, company, self.holder, finished + self.lease):
            log.warning("lost lease", extra={"company": company})
            return None
        return claim_next(conn, company, finished, finished + self.lease, token)

    def _record(
        self, conn: Connection, row: Any, token: str, report: Report, started: datetime, finished: datetime
    ) -> None:
        """Write the attempt's outcome (``sync.outcomes``); raises :class:`LeaseLost` if fenced off."""
        record(conn, self.engine, row, token, report, started, finished)

    def _publish(self, report: Report) -> None:
        if report.change is not None:
            self.engine.feed.publish([report.change])
