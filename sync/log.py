"""Read side: a document with its postings and integration log, and posting listings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from storage.db import Session
from storage.models import Attempt, Posting
from storage.queries import overview
from storage.states import PostingState

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
