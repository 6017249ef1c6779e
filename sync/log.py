"""Read side: a document with its postings and integration log, and posting listings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attempt, Document, Integration, Posting
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


async def document_view(s: AsyncSession, source: str, kind: str, external_id: str) -> dict[str, Any] | None:
    """The document, its postings and its attempts (newest first), or ``None``."""
    row = (
        await s.execute(
            select(Document, Integration.name)
            .join(Integration, Integration.id == Document.integration_id)
            .where(Document.source == source, Document.kind == kind, Document.external_id == external_id)
        )
    ).one_or_none()
    if row is None:
        return None
    doc, integration = row
    postings = list(
        (await s.scalars(select(Posting).where(Posting.document_id == doc.id).order_by(Posting.id))).all()
    )
    by_id = {p.id: p for p in postings}
    attempts = (
        await s.scalars(
            select(Attempt)
            .where(Attempt.posting_id.in_(list(by_id) or [0]))
            .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        )
    ).all()
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
    s: AsyncSession, *, state: str | None, integration: str | None, cursor: int | None, limit: int = 100
) -> dict[str, Any]:
    """Postings filtered by state and integration, in id order, keyset-paginated."""
    stmt = (
        select(Posting, Document, Integration.name)
        .join(Document, Document.id == Posting.document_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .order_by(Posting.id)
        .limit(limit + 1)
    )
    if state:
        stmt = stmt.where(Posting.state == state)
    if integration:
        stmt = stmt.where(Integration.name == integration)
    if cursor:
        stmt = stmt.where(Posting.id > cursor)
    rows = (await s.execute(stmt)).all()
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
