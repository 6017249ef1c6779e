"""Postings a document no longer needs: withdrawn from the ledger, or flagged when booked.

A bill that was paid and is sent again unpaid no longer needs its payment
posting; a payroll run whose correction lines are gone no longer needs that
period's journal. The engine marks such a posting (``desired_hash`` ``None``)
when the new version arrives; what happens next depends on where it is:

- never written (no record, no uncertain write): withdrawn at once, no ledger call;
- a draft in the ledger (or maybe, after an unknown outcome): the worker looks it
  up if it must, deletes it, and logs operation ``delete``;
- booked: never touched; a person is told why and what to do.

The same rule serves every document kind: it works on postings, not on bills.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from connectors.base import PostingRequest
from storage.models import Attempt, Posting
from storage.states import Operation, Outcome, PostingState, Trigger
from sync.documents import DATA_MODELS, document_date
from sync.kinds import KINDS

#: error code of a booked posting its document no longer needs
WITHDRAW_BOOKED = "withdraw_booked"


def no_longer_needed(doc_kind: str, posting_kind: str, period: str | None) -> str:
    """Why the document no longer needs this posting, in the finance team's words."""
    if posting_kind == "journal" and period:
        return f"the {doc_kind.replace('_', ' ')} has no lines for {period} any more"
    kind = KINDS.get(doc_kind)
    why = kind.no_longer_needed(posting_kind) if kind is not None else None
    return why or f"the {doc_kind.replace('_', ' ')} no longer needs it"


def booked_reason(doc_kind: str, posting_kind: str, period: str | None, ref: str | None) -> str:
    """The message a person gets when the posting to withdraw is booked."""
    label = posting_kind.replace("_", " ")
    why = no_longer_needed(doc_kind, posting_kind, period)
    return f"{label} {ref or '?'} is booked; {why} — reverse it in the ledger"


def withdraw(p: Posting, doc_kind: str, now: datetime) -> Attempt | None:
    """Mark ``p`` as no longer needed; the log entry when that settles it at once.

    Called inside the ingest transaction for each posting the new version of the
    document does not plan.
    """
    state = PostingState(p.state)
    p.desired_hash = None
    if state in (PostingState.IGNORED, PostingState.WITHDRAWN, PostingState.IN_FLIGHT):
        return None  # in flight: the worker's settle sees the change and queues it again
    p.updated_at = now
    if state is PostingState.BOOKED:
        p.last_error = booked_reason(doc_kind, p.kind, p.period, p.external_ref)
        p.error_code = WITHDRAW_BOOKED
        return _entry(p, now, Operation.NONE, Outcome.REFUSED, p.last_error, WITHDRAW_BOOKED)
    if p.external_ref is None and not p.lookup_first:
        p.state = PostingState.WITHDRAWN
        p.last_error = p.error_code = None
        return _entry(
            p, now, Operation.NONE, Outcome.WITHDRAWN, "No longer needed; it never reached the ledger."
        )
    p.state = PostingState.PENDING
    p.queued_at = p.next_attempt_at = now
    p.queued_trigger, p.queued_actor = Trigger.CHANGE, None  # the document changed
    p.last_error = p.error_code = None
    return None


def withdrawal_request(company: str, row: Any) -> PostingRequest:
    """What a connector needs to find, check and delete the record of a claimed posting.

    The document no longer describes the record (a bill that is no longer paid has no
    payment date), so only the key and the document's date are given: connectors find
    records by key and check them by their reference.
    """
    data = DATA_MODELS[row.doc_kind].model_validate(row.data)
    when = document_date(row.doc_kind, data) or date.today()
    return PostingRequest(kind=row.kind, idempotency_key=row.idempotency_key, company_key=company, date=when)


def _entry(
    p: Posting, now: datetime, operation: Operation, outcome: Outcome, message: str, code: str | None = None
) -> Attempt:
    return Attempt(
        posting_id=p.id,
        started_at=now,
        finished_at=now,
        trigger=Trigger.CHANGE,
        operation=operation,
        outcome=outcome,
        error_code=code,
        message=message,
        external_ref=p.external_ref,
    )
