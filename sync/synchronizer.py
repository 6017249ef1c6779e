"""One try of one claimed posting against its ledger: look up first, create, update, withdraw.

Never a duplicate: a create that may have reached the ledger without an answer
left the posting look-up-first, so this try finds the record by its idempotency
key before writing anything. A booked record is never changed or deleted. Every
exception is classified into the :class:`Report` (nothing escapes the worker).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import Connector, PostingRequest, PostingResult, RecordStatus, UnsupportedPostingError
from storage.queries.jobs import QUOTA_CODE
from storage.states import Operation, Outcome
from sync.changes import Change
from sync.engine import Engine
from sync.errors import Failure, FailureKind, classify
from sync.kinds import build_request
from sync.voucher_change import voucher_fields
from sync.withdrawal import withdrawal_request

log = logging.getLogger("sync.worker")  # the attempt log keeps the worker's logger name


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
    #: the voucher's fields as this attempt's request had them (``sync.voucher_change``)
    fields: dict[str, str] | None = None


@dataclass
class _Progress:
    """How far a try got: what a failure reports (the operation, whether it looked up)."""

    operation: Operation = Operation.NONE
    lookup_done: bool = False


class Synchronizer:
    """Brings one posting's ledger record in line with what its document needs."""

    def __init__(self, engine: Engine, call_timeout: float):
        self.engine = engine
        self.call_timeout = call_timeout

    async def _call(self, coro: Any) -> Any:
        async with asyncio.timeout(self.call_timeout):
            return await coro

    async def attempt(self, row: Any) -> Report:
        """One try of a claimed posting (``row`` joins posting, document and integration)."""
        engine = self.engine
        done = _Progress()
        try:
            cfg = engine.integrations.get(row.integration)
            if cfg is None:
                raise UnsupportedPostingError(
                    f"Integration {row.integration} is no longer in the config.", code="no_config"
                )
            if row.desired_hash is None:
                return await self.withdraw(row, engine.connector(row.integration))
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
            report = await self._send(row, connector, request, done)
            report.fields = voucher_fields(request)
            return report
        except Exception as exc:  # classified below; nothing escapes the worker
            return _failed(row, exc, done.operation, done.lookup_done)

    async def _send(self, row: Any, connector: Connector, request: PostingRequest, done: _Progress) -> Report:
        """Look up first when unsure; update a record we have, else create one."""
        ref: str | None = row.external_ref
        status: RecordStatus | None = None
        synced_hash = row.synced_hash
        if ref is None and row.lookup_first:
            done.operation = Operation.LOOKUP
            found = await self._call(connector.find(request))
            done.lookup_done = True
            if found is not None:
                ref, status = found.external_ref, found.status
                # It holds what the uncertain write carried.
                synced_hash = row.sent_hash
        if ref is not None:
            if status is None:
                status = await self._call(connector.status(ref, request))
            if status is RecordStatus.BOOKED:
                result = PostingResult(ref, RecordStatus.BOOKED)
                return Report(Outcome.BOOKED, done.operation, result, lookup_done=done.lookup_done)
            if status is not RecordStatus.MISSING:
                if not row.force and synced_hash == row.desired_hash:
                    result = PostingResult(ref, status)
                    return Report(Outcome.SYNCED, done.operation, result, lookup_done=done.lookup_done)
                done.operation = Operation.UPDATE
                result = await self._call(connector.update(ref, request))
                return Report(Outcome.SYNCED, done.operation, result, lookup_done=True)
        if _quota_used_up(row, self.engine.clock()):
            return Report(
                Outcome.REFUSED,
                Operation.NONE,
                failure=Failure(
                    FailureKind.NEEDS_PERSON,
                    QUOTA_CODE,
                    f"The monthly quota of {row.monthly_quota} bookings is used up; "
                    "this waits until the 1st of next month.",
                ),
                lookup_done=done.lookup_done,
            )
        done.operation = Operation.CREATE
        result = await self._call(connector.create(request))
        return Report(Outcome.SYNCED, done.operation, result, lookup_done=True)

    async def withdraw(self, row: Any, connector: Any) -> Report:
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
