"""Ingest: store a validated batch of documents and queue the postings they need.

One transaction per batch; the worker does the talking to ledgers. A new version
of a document plans its postings again (``sync/kinds/``) and :func:`apply_plan`
moves each posting to match: new ones queued, changed ones queued again, ones no
longer needed withdrawn, booked ones never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.db import Session, lost_race
from storage.models import Attempt, Document, Posting
from storage.queries.dependencies import WAIT_DEPENDENCY
from storage.queries.documents import lock_documents, postings_of_documents
from storage.states import Operation, Outcome, PostingState, Trigger
from sync.changes import Change
from sync.documents import FieldError, ValidEvent, document_date
from sync.engine import WAIT_AUTO_OFF, WAIT_HISTORY, Engine
from sync.kinds import KINDS, UnsupportedDocument, build_request, plan
from sync.planner import PlannedPosting
from sync.voucher_change import BOOKED_CHANGE, booked_change_text, unsent_change, voucher_fields
from sync.vouchers import idempotency_key
from sync.withdrawal import withdraw

log = logging.getLogger(__name__)

#: a posting -> the fields its voucher would have for the document's new version
VoucherOf = Callable[[Posting], dict[str, str] | None]

#: a batch that keeps meeting concurrent writes of the same documents gives up (a 500) after this
INGEST_TRIES = 5


class IngestRejected(Exception):
    """The request cannot be stored as a whole; nothing was written."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass
class IngestResult:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


def _wait_code(reason: str | None) -> str | None:
    if reason is None:
        return None
    return WAIT_HISTORY if "history" in reason else WAIT_AUTO_OFF


async def ingest_batch(engine: Engine, events: Sequence[ValidEvent]) -> IngestResult:
    """Store a validated batch in one transaction and queue what it needs.

    When another replica stores some of the same documents at the same moment, the
    transaction that loses is rolled back whole and run again: it then finds them,
    so it answers exactly as a second send of the batch would (those ids stale).
    """
    unsupported = [
        FieldError(index=i, field="kind", message=str(UnsupportedDocument(ev.event.kind)))
        for i, ev in enumerate(events)
        if ev.event.kind not in KINDS
    ]
    if unsupported:
        raise IngestRejected(unsupported)
    for attempt in range(1, INGEST_TRIES + 1):
        try:
            result, changes = await _store_batch(engine, events)
            break
        except Exception as exc:
            if attempt == INGEST_TRIES or not lost_race(exc):
                raise
            log.info("ingest met a concurrent write; trying again", extra={"attempt": attempt})
    engine.feed.publish(changes)
    engine.wake()
    return result


async def _store_batch(engine: Engine, events: Sequence[ValidEvent]) -> tuple[IngestResult, list[Change]]:
    now = engine.clock()
    result = IngestResult()
    changes: list[Change] = []
    async with engine.db.sessions() as s, s.begin():
        await engine.db.lock_for_write(s)
        docs = await lock_documents(s, [ev.key for ev in events])
        _check_integrations_unchanged(engine, events, docs)
        doc_ids = [d.id for d in docs.values()]
        postings: dict[int, dict[str, Posting]] = {}
        for p in await postings_of_documents(s, doc_ids):
            postings.setdefault(p.document_id, {})[p.slot] = p
        touched: list[tuple[ValidEvent, Document]] = []
        for ev in events:
            e = ev.event
            doc = docs.get(ev.key)
            if doc is not None and e.version <= doc.version:
                result.stale.append(e.id)
                continue
            if doc is None:
                doc = Document(
                    source=e.source,
                    kind=e.kind,
                    external_id=e.id,
                    integration_id=engine.integration_ids[e.integration],
                    received_at=now,
                    status="received",
                    version=e.version,
                    data={},
                )
                s.add(doc)
                docs[ev.key] = doc
            doc.version, doc.data, doc.updated_at = e.version, ev.stored_data(), now
            doc.doc_date = document_date(e.kind, ev.data)
            touched.append((ev, doc))
        await s.flush()  # one round for all documents: their ids key the postings
        for ev, doc in touched:
            planned = plan(ev.event.kind, ev.data, engine.rules(ev.event.integration))
            current = postings.setdefault(doc.id, {})
            voucher = desired_voucher(engine, ev.event.integration, doc.kind, doc.data)
            apply_plan(s, doc, ev.event.integration, planned, current, now, voucher)
        await s.flush()
        for ev, doc in touched:
            current = postings[doc.id]
            changes.extend(Change(p.id, doc.id, p.state, p.error_group_id) for p in current.values())
            result.accepted.append(
                {
                    "id": ev.event.id,
                    "document": f"{ev.event.source}/{ev.event.kind}/{ev.event.id}",
                    "version": ev.event.version,
                    "postings": _posting_states(current),
                }
            )
    return result, changes


def desired_voucher(engine: Engine, integration: str, doc_kind: str, data: dict[str, Any]) -> VoucherOf:
    """The fields each posting's voucher would have for ``data`` (``None``: it cannot be built,
    say the new category has no mapping yet)."""

    def fields(p: Posting) -> dict[str, str] | None:
        cfg = engine.integrations.get(integration)
        if cfg is None:
            return None
        try:
            request = build_request(
                cfg=cfg,
                lookup=engine.mappings(integration),
                doc_kind=doc_kind,
                doc_data=data,
                posting_kind=p.kind,
                period=p.period,
                key=p.idempotency_key,
            )
        except Exception:  # a missing mapping, a test company: the change is still not sent
            return None
        return voucher_fields(request)

    return fields


def _check_integrations_unchanged(
    engine: Engine, events: Sequence[ValidEvent], docs: dict[tuple[str, str, str], Document]
) -> None:
    by_id = {v: k for k, v in engine.integration_ids.items()}
    errors = []
    for index, ev in enumerate(events):
        doc = docs.get(ev.key)
        if doc is not None and by_id.get(doc.integration_id) != ev.event.integration:
            errors.append(
                FieldError(
                    index=index,
                    field="integration",
                    message=f"document {ev.event.id} belongs to integration "
                    f"'{by_id.get(doc.integration_id)}'; it cannot move to another",
                )
            )
    if errors:
        raise IngestRejected(errors)


def apply_plan(
    s: Session,
    doc: Document,
    integration: str,
    planned: list[PlannedPosting],
    current: dict[str, Posting],
    now: datetime,
    voucher: VoucherOf | None = None,
) -> list[dict[str, Any]]:
    """Move ``current`` (the document's postings by slot) to match ``planned``; their states.

    ``voucher`` gives the fields a posting's voucher would have now (to tell a person what a
    booked voucher's change would have changed).
    """
    for want in planned:
        p = current.get(want.slot)
        if p is None:
            p = _new_posting(doc, integration, want, now)
            s.add(p)
            current[want.slot] = p
        else:
            _follow(s, p, want, now, voucher)
    wanted = {want.slot for want in planned}
    for slot, p in current.items():
        if slot not in wanted and p.desired_hash is not None:
            entry = withdraw(p, doc.kind, now)
            if entry is not None:
                s.add(entry)
    return _posting_states(current)


def _new_posting(doc: Document, integration: str, want: PlannedPosting, now: datetime) -> Posting:
    code = _wait_code(want.wait_reason)
    return Posting(
        document_id=doc.id,
        integration_id=doc.integration_id,
        kind=want.kind,
        slot=want.slot,
        period=want.period,
        desired_hash=want.desired_hash,
        idempotency_key=idempotency_key(integration, doc.source, doc.kind, doc.external_id, want.slot),
        company_key=integration,
        attempts=0,
        lookup_first=False,
        force=False,
        state=PostingState.WAITING if code else PostingState.PENDING,
        error_code=code,
        last_error=want.wait_reason,
        queued_at=now,
        next_attempt_at=now,
        updated_at=now,
        queued_trigger=Trigger.AUTO,
        depends_on=want.depends_on,
    )


def _follow(s: Session, p: Posting, want: PlannedPosting, now: datetime, voucher: VoucherOf | None) -> None:
    """An existing posting follows the new version: queued again if changed, never if booked."""
    code = _wait_code(want.wait_reason)
    changed = p.desired_hash != want.desired_hash
    p.desired_hash, p.depends_on = want.desired_hash, want.depends_on
    state = PostingState(p.state)
    if state is PostingState.BOOKED and changed and want.desired_hash == p.synced_hash:
        # needed again exactly as booked (say, paid again after a withdrawal): in line
        p.last_error = p.error_code = p.unsent_change = None
        p.updated_at = now
    elif state is PostingState.BOOKED and changed:
        _booked_change(s, p, now, voucher(p) if voucher else None)
    elif state is PostingState.WAITING and p.error_code == WAIT_DEPENDENCY:
        pass  # parked behind a failed posting of the document: released when that one syncs
    elif state is PostingState.WAITING and code is None:
        _requeue(p, now, Trigger.CHANGE if changed else Trigger.AUTO, None)
    elif state is PostingState.WAITING:
        p.error_code, p.last_error = code, want.wait_reason
    elif changed and state in (
        PostingState.SYNCED,
        PostingState.FAILED,
        PostingState.RETRYING,
        PostingState.WITHDRAWN,
    ):
        _requeue(p, now, Trigger.CHANGE, None)


def _booked_change(s: Session, p: Posting, now: datetime, after: dict[str, str] | None) -> None:
    """The voucher is booked: the change is not sent; say field by field what it would change."""
    change = unsent_change(p.synced_fields, after) if after is not None else []
    msg = booked_change_text(p.external_ref, change)
    p.last_error, p.error_code, p.unsent_change, p.updated_at = msg, BOOKED_CHANGE, change, now
    p.handled_by = p.handled_at = None  # a new change needs a person again
    s.add(
        Attempt(
            posting_id=p.id,
            started_at=now,
            finished_at=now,
            trigger=Trigger.CHANGE,
            operation=Operation.NONE,
            outcome=Outcome.REFUSED,
            error_code=BOOKED_CHANGE,
            message=msg,
            external_ref=p.external_ref,
        )
    )


def _requeue(p: Posting, now: datetime, trigger: Trigger, actor: str | None) -> None:
    p.state = PostingState.PENDING
    p.queued_at = p.next_attempt_at = p.updated_at = now
    p.queued_trigger, p.queued_actor = trigger, actor
    p.error_code = p.last_error = None


def _posting_states(current: dict[str, Posting]) -> list[dict[str, Any]]:
    return [
        {"kind": p.kind, "period": p.period, "state": p.state}
        if p.period
        else {"kind": p.kind, "state": p.state}
        for p in current.values()
    ]
