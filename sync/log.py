"""Read side: a document with its postings and integration log, posting listings, the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from storage.db import Session
from storage.models import Attempt, Posting
from storage.queries import activity, overview
from storage.states import PostingState
from sync.lookup import summary

QUEUED_STATES = (PostingState.WAITING, PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING)


def iso(ts: datetime | None) -> str | None:
    """UTC timestamp as ``2026-11-22T10:02:03Z``."""
    if ts is None:
        return None
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def posting_view(p: Posting) -> dict[str, Any]:
    view: dict[str, Any] = {
        "kind": p.kind,
        "state": p.state,
        "external_ref": p.external_ref,
        "erp_status": p.erp_status,
        "last_error": p.last_error,
        "attempts": p.attempts,
        "queued_since": iso(p.queued_at) if p.state in QUEUED_STATES else None,
    }
    if p.period:
        view["period"] = p.period
    return view


async def document_view(s: Session, source: str, kind: str, external_id: str) -> dict[str, Any] | None:
    """The document, its postings and its attempts (newest first), or ``None``."""
    found = await overview.document_with_integration(s, source, kind, external_id)
    if found is None:
        return None
    doc, integration = found
    postings = await overview.postings_of(s, doc.id)
    by_id = {p.id: p for p in postings}
    attempts = await overview.attempts_of(s, by_id)
    return {
        "source": doc.source,
        "kind": doc.kind,
        "id": doc.external_id,
        "version": doc.version,
        "integration": integration,
        "data": doc.data,
        "postings": [posting_view(p) for p in postings],
        "attempts": [attempt_view(a, by_id[a.posting_id]) for a in attempts],
    }


def attempt_view(a: Attempt, p: Posting) -> dict[str, Any]:
    return {
        "posting": f"{p.kind}:{p.period}" if p.period else p.kind,
        "at": iso(a.started_at),
        "trigger": a.trigger,
        "actor": a.actor,
        "operation": a.operation,
        "outcome": a.outcome,
        "message": a.message,
        "external_ref": a.external_ref,
    }


async def postings_page(
    s: Session, *, state: str | None, integration: str | None, cursor: int | None, limit: int = 100
) -> dict[str, Any]:
    """Postings filtered by state and integration, in id order, keyset-paginated."""
    rows = await overview.postings_listed(
        s, state=state, integration=integration, after_id=cursor, limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "postings": [
            {
                "document": {"source": d.source, "kind": d.kind, "id": d.external_id},
                "integration": name,
                **posting_view(p),
            }
            for p, d, name in rows
        ],
        "next_cursor": str(rows[-1][0].id) if more and rows else None,
    }


#: rows on one page of ``/ledger activity``
ACTIVITY_PAGE = 20


@dataclass(frozen=True)
class ActivityEntry:
    """One thing a person did (or was refused): who, what, on what, when, how it went."""

    id: int
    at: datetime
    actor: str | None
    action: str
    #: what it was done to, as people name it: ``books-dk``, ``DHL Express · INV-3001 · 310.00 DKK``
    subject: str
    outcome: str | None
    detail: dict[str, Any] | None


async def activity_page(
    s: Session, since: datetime | None, before: int | None, size: int = ACTIVITY_PAGE
) -> tuple[list[ActivityEntry], int | None]:
    """One page of the audit trail, newest first, and the id the next page starts before."""
    rows = await activity.activity_since(s, since, before, size + 1)
    shown = rows[:size]
    named = await _subjects_named(s, [r.subject for r in shown])
    entries = [
        ActivityEntry(r.id, r.at, r.actor, r.action, named.get(r.subject, r.subject), r.outcome, r.detail)
        for r in shown
    ]
    return entries, (entries[-1].id if len(rows) > size and entries else None)


def _ids(subjects: list[str], prefix: str) -> list[int]:
    return [int(x[len(prefix) :]) for x in subjects if x.startswith(prefix) and x[len(prefix) :].isdigit()]


async def _subjects_named(s: Session, subjects: list[str]) -> dict[str, str]:
    """``document:12`` -> its summary; ``posting:7`` -> which posting of which document;
    ``integration:books-dk`` -> ``books-dk``; ``error_group:3`` -> ``error group 3``."""
    out: dict[str, str] = {}
    for sub in subjects:
        head, _, rest = sub.partition(":")
        if head == "integration":
            out[sub] = rest
        elif head == "error_group":
            out[sub] = f"error group {rest}"
    for doc_id, doc in (await activity.documents_by_id(s, _ids(subjects, "document:"))).items():
        out[f"document:{doc_id}"] = summary(doc)
    for pid, (p, doc) in (await activity.posting_documents(s, _ids(subjects, "posting:"))).items():
        out[f"posting:{pid}"] = f"{p.kind.replace('_', ' ')} posting of {summary(doc)}"
    return out


async def activity_entry(s: Session, activity_id: int) -> ActivityEntry | None:
    """One row of the audit trail, its subject named as people name it."""
    r = await activity.activity_row(s, activity_id)
    if r is None:
        return None
    named = await _subjects_named(s, [r.subject])
    return ActivityEntry(r.id, r.at, r.actor, r.action, named.get(r.subject, r.subject), r.outcome, r.detail)
