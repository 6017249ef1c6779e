"""Claims due postings per company, calls the connector, records the outcome.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from connectors.base import PostingResult, RecordStatus, UnsupportedPostingError
from storage.queries.groups import close_settled_groups, upsert_error_group
from storage.queries.jobs import QUOTA_CODE, count_booking
from storage.queries.postings import (
    acquire_lease,
    claim_next,
    due_companies,
    extend_lease,
    log_attempt,
    outage_declared,
    recover_stuck,
    release_due_retries,
    release_lease,
    settle,
)
from storage.states import Operation, Outcome, PostingState, Trigger
from sync.changes import AttemptObserved, Change
from sync.engine import Engine
from sync.errors import Failure, FailureKind, classify
from sync.policy import fingerprint
from sync.vouchers import build_request
from sync.withdrawal import WITHDRAW_BOOKED, booked_reason, withdrawal_request

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The posting was recovered and claimed by another drain while this one waited."""


@dataclass
class Report:
    """The outcome of one attempt, before it is written."""

    outcome: Outcome
    operation: Operation
    result: PostingResult | None = None
    failure: Failure | None = None
    lookup_done: bool = False
    hold_company_until: datetime | None = None
    change: Change | None = None


class Worker:
    """Sends due postings; run one per process (replicas coordinate through leases)."""

    def __init__(self, engine: Engine, *, holder: str | None = None):
        self.engine = engine
        cfg = engine.worker_config
        self.concurrency = cfg.concurrency
        self.lease = timedelta(seconds=cfg.lease_seconds)
        self.poll_seconds = cfg.poll_seconds
        self.call_timeout = cfg.call_timeout_seconds
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
            task.add_done_callback(lambda _t, c=company: self._finished(c))
        return len(companies)

    def _finished(self, company: str) -> None:
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
        clock = self.engine.clock
        db = self.engine.db
        now = clock()
        token = uuid.uuid4().hex  # fences this drain's writes (see storage.queries.postings.settle)

        def start(conn: Connection) -> Any | None:
            if not acquire_lease(conn, company, self.holder, now, now + self.lease):
                return False
            recover_stuck(conn, now, company)
            return claim_next(conn, company, now, now + self.lease, token)

        claimed = await db.run(start)
        if claimed is False:
            return
        hold: datetime | None = None
        renewed = now
        try:
            while claimed is not None:
                started = clock()
                report = await self._attempt(claimed)
                finished = clock()
                extend = finished - renewed > self.lease / 3

                def record_and_claim(
                    conn: Connection,
                    row: Any = claimed,
                    report: Report = report,
                    started: datetime = started,
                    finished: datetime = finished,
                    extend: bool = extend,
                ) -> Any | None:
                    self._record(conn, row, token, report, started, finished)
                    if report.hold_company_until is not None or self._stopping:
                        return None
                    if extend and not extend_lease(conn, company, self.holder, finished + self.lease):
                        log.warning("lost lease", extra={"company": company})
                        return None
                    return claim_next(conn, company, finished, finished + self.lease, token)

                observed = AttemptObserved(
                    claimed.integration,
                    report.operation,
                    report.outcome,
                    (finished - started).total_seconds(),
                )
                try:
                    claimed = await db.run(record_and_claim)
                except LeaseLost:
                    # Another drain took the posting over while we waited for the ledger:
                    # its outcome is that drain's to record, and the company is its now.
                    log.warning(
                        "posting taken over; outcome not recorded",
                        extra={"company": company, "posting": claimed.id},
                    )
                    return
                for listener in self.engine.attempt_listeners:
                    listener(observed)
                if extend:
                    renewed = finished
                hold = report.hold_company_until
                self._publish(report)
        finally:
            await db.run(lambda conn: release_lease(conn, company, self.holder, hold))

    async def _call(self, coro: Any) -> Any:
        async with asyncio.timeout(self.call_timeout):
            return await coro

    async def _attempt(self, row: Any) -> Report:
        engine = self.engine
        cfg = engine.integrations.get(row.integration)
        operation = Operation.NONE
        lookup_done = False
        try:
            if cfg is None:
                raise UnsupportedPostingError(
                    f"Integration {row.integration} is no longer in the config.", code="no_config"
                )
            if row.desired_hash is None:
                return await self._withdraw(row, engine.connector(row.integration))
            request = build_request(
                cfg=cfg,
                lookup=engine.mappings(row.integration),
                doc_kind=row.doc_kind,
                doc_data=row.data,
                posting_kind=row.kind,
                period=row.period,
                key=row.idempotency_key,
            )
            connector = engine.connector(row.integration)
            if not connector.supports(row.kind):
                raise UnsupportedPostingError(
                    f"{cfg.kind} cannot take {row.kind.replace('_', ' ')} postings."
                )
            ref: str | None = row.external_ref
            status: RecordStatus | None = None
            synced_hash = row.synced_hash
            if ref is None and row.lookup_first:
                operation = Operation.LOOKUP
                found = await self._call(connector.find(request))
                lookup_done = True
                if found is not None:
                    ref, status = found.external_ref, found.status
                    # It holds what the uncertain write carried.
                    synced_hash = row.sent_hash
            if ref is not None:
                if status is None:
                    status = await self._call(connector.status(ref, request))
                if status is RecordStatus.BOOKED:
                    return Report(
                        Outcome.BOOKED,
                        operation,
                        PostingResult(ref, RecordStatus.BOOKED),
                        lookup_done=lookup_done,
                    )
                if status is RecordStatus.MISSING:
                    ref = None
                elif not row.force and synced_hash == row.desired_hash:
                    return Report(
                        Outcome.SYNCED, operation, PostingResult(ref, status), lookup_done=lookup_done
                    )
                else:
                    operation = Operation.UPDATE
                    result = await self._call(connector.update(ref, request))
                    return Report(Outcome.SYNCED, operation, result, lookup_done=True)
            if _quota_used_up(row, engine.clock()):
                return Report(
                    Outcome.REFUSED,
                    Operation.NONE,
                    failure=Failure(
                        FailureKind.NEEDS_PERSON,
                        QUOTA_CODE,
                        f"The monthly quota of {row.monthly_quota} bookings is used up; "
                        "this waits until the 1st of next month.",
                    ),
                    lookup_done=lookup_done,
                )
            operation = Operation.CREATE
            result = await self._call(connector.create(request))
            return Report(Outcome.SYNCED, operation, result, lookup_done=True)
        except Exception as exc:  # classified below; nothing escapes the worker
            return _failed(row, exc, operation, lookup_done)

    async def _withdraw(self, row: Any, connector: Any) -> Report:
        """Take a record the document no longer needs out of the ledger (never a booked one)."""
        request = withdrawal_request(row.integration, row)
        operation, ref, lookup_done = Operation.NONE, row.external_ref, False
        status: RecordStatus | None = None
        try:
            if ref is None and row.lookup_first:
                operation = Operation.LOOKUP
                found = await self._call(connector.find(request))
                lookup_done = True
                if found is not None:
                    ref, status = found.external_ref, found.status
            if ref is None:
                return Report(Outcome.WITHDRAWN, operation, lookup_done=lookup_done)
            if status is None:
                status = await self._call(connector.status(ref, request))
            if status is RecordStatus.BOOKED:
                return Report(Outcome.BOOKED, operation, PostingResult(ref, status), lookup_done=lookup_done)
            if status is RecordStatus.DRAFT:
                operation = Operation.DELETE
                await self._call(connector.delete(ref, request))
            return Report(
                Outcome.WITHDRAWN, operation, PostingResult(ref, RecordStatus.MISSING), lookup_done=True
            )
        except Exception as exc:  # classified like any attempt; nothing escapes the worker
            # A lost answer to a delete is harmless: the next try checks the record first.
            return _failed(
                row,
                exc,
                Operation.NONE if operation is Operation.DELETE else operation,
                lookup_done,
                shown=operation,
            )

    def _record(
        self, conn: Connection, row: Any, token: str, report: Report, started: datetime, finished: datetime
    ) -> None:
        """Write the attempt and the posting's new state (inside the caller's transaction).

        Raises :class:`LeaseLost` (rolling the transaction back) when the posting is no
        longer this drain's: a stalled worker never records over the one that took over.
        """
        engine = self.engine
        attempts = row.attempts + 1
        trigger = row.queued_trigger or (Trigger.RETRY if row.attempts else Trigger.AUTO)
        if trigger == Trigger.AUTO and row.attempts:
            trigger = Trigger.RETRY
        values: dict[str, Any] = {
            "attempts": attempts,
            "lease_expires_at": None,
            "updated_at": finished,
            "queued_trigger": None,
            "queued_actor": None,
            "force": False,
            "lookup_first": row.lookup_first and not report.lookup_done,
        }
        message: str | None = None
        error_code: str | None = None
        group_id: int | None = row.error_group_id
        ref = report.result.external_ref if report.result else row.external_ref
        outcome = report.outcome
        failure = report.failure
        synced_hash: str | None = None
        if outcome is Outcome.WITHDRAWN:
            # The record is gone; should the document need it again, it is created anew.
            values.update(
                state=PostingState.WITHDRAWN,
                external_ref=None,
                erp_status=None,
                synced_hash=None,
                sent_hash=None,
                last_error=None,
                error_code=None,
            )
        elif outcome is Outcome.SYNCED:
            synced_hash = row.desired_hash
            values.update(
                external_ref=ref,
                erp_status=RecordStatus.DRAFT.value,
                last_error=None,
                error_code=None,
                next_attempt_at=finished,
                queued_at=finished,
            )
        elif outcome is Outcome.REFUSED and failure is not None and failure.code == QUOTA_CODE:
            message, error_code = failure.message, failure.code
            values.update(state=PostingState.WAITING, last_error=message, error_code=error_code)
        elif outcome is Outcome.BOOKED:
            values.update(
                state=PostingState.BOOKED,
                external_ref=ref,
                erp_status=RecordStatus.BOOKED.value,
                error_code=None,
            )
            if row.desired_hash is None:
                message = booked_reason(row.doc_kind, row.kind, row.period, ref)
                values["last_error"], error_code = message, WITHDRAW_BOOKED
            elif row.synced_hash != row.desired_hash:
                message = (
                    f"{ref} is booked in the ledger, so it cannot be changed; the "
                    "latest change was not sent. Correct it in the ledger."
                )
                values["last_error"] = message
                error_code = "booked"
        else:
            assert failure is not None
            message, error_code = failure.message, failure.code
            values.update(last_error=message, error_code=error_code)
            if outcome is Outcome.UNCERTAIN:
                values.update(lookup_first=True, sent_hash=row.desired_hash)
            # While an outage of the whole ledger is announced, a posting is not at fault for
            # failing: it waits with the rest instead of giving up (no per-item messages).
            give_up = (
                outcome in (Outcome.RETRYING, Outcome.UNCERTAIN)
                and not failure.rate_limited
                and engine.policy.gives_up(attempts)
                and not outage_declared(conn, engine.integration_ids[row.integration])
            )
            if outcome is Outcome.FAILED or give_up:
                if give_up:
                    message = f"Gave up after {attempts} attempts. Last error: {message}"
                    values["last_error"] = message
                    outcome = Outcome.FAILED
                group_id = upsert_error_group(
                    conn,
                    fingerprint=fingerprint(
                        row.integration,
                        error_code,
                        failure.message,
                        (row.external_id, row.idempotency_key, ref or ""),
                    ),
                    integration_id=engine.integration_ids[row.integration],
                    code=error_code,
                    title=failure.message,
                    now=finished,
                )
                values.update(state=PostingState.FAILED, error_group_id=group_id)
            else:
                at = engine.policy.next_attempt(finished, attempts, failure.retry_after)
                values.update(state=PostingState.RETRYING, next_attempt_at=at)
                # The ledger is struggling, or a write may or may not have landed: the rest of
                # the company's queue waits rather than overtake this posting.
                report.hold_company_until = (
                    at if failure.kind in (FailureKind.TRANSIENT, FailureKind.UNCERTAIN) else None
                )
        if not settle(conn, row.id, token, values, synced_hash, outcome is Outcome.WITHDRAWN):
            raise LeaseLost(row.id)
        if outcome is Outcome.SYNCED and report.operation is Operation.CREATE and row.monthly_quota:
            count_booking(conn, row.integration, finished.strftime("%Y-%m"))
        log_attempt(
            conn,
            dict(
                posting_id=row.id,
                started_at=started,
                finished_at=finished,
                trigger=trigger,
                actor=row.queued_actor,
                operation=report.operation,
                outcome=outcome,
                error_code=error_code,
                message=message,
                external_ref=ref,
            ),
        )
        if outcome in (Outcome.SYNCED, Outcome.BOOKED, Outcome.WITHDRAWN) and group_id is not None:
            close_settled_groups(conn, [group_id])
        report.change = Change(
            row.id,
            row.document_id,
            str(PostingState.SYNCED if outcome is Outcome.SYNCED else values["state"]),
            group_id,
        )

    def _publish(self, report: Report) -> None:
        if report.change is not None:
            self.engine.feed.publish([report.change])


def _failed(
    row: Any, exc: Exception, operation: Operation, lookup_done: bool, shown: Operation | None = None
) -> Report:
    """The report of an attempt that raised; ``shown`` is the operation the log names."""
    writing = operation in (Operation.CREATE, Operation.UPDATE)
    failure = classify(exc, during_write=writing)
    if failure.kind is FailureKind.NEEDS_PERSON and writing:
        lookup_done = True  # a definite refusal: nothing was written
    log.info(
        "attempt failed",
        extra={"posting": row.id, "document": row.document_id, "code": failure.code, "kind": failure.kind},
    )
    return Report(_outcome_of(failure), shown or operation, failure=failure, lookup_done=lookup_done)


def _quota_used_up(row: Any, now: datetime) -> bool:
    """Whether a create now would go over the integration's monthly booking quota."""
    if not row.monthly_quota:
        return False
    used = row.quota_used if row.quota_month == now.strftime("%Y-%m") else 0
    return bool(used >= row.monthly_quota)


def _outcome_of(failure: Failure) -> Outcome:
    return {
        FailureKind.TRANSIENT: Outcome.RETRYING,
        FailureKind.UNCERTAIN: Outcome.UNCERTAIN,
        FailureKind.NEEDS_PERSON: Outcome.FAILED,
        FailureKind.BOOKED: Outcome.BOOKED,
    }[failure.kind]
