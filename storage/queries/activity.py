"""The audit trail's reads: who did what, newest first (``sync/log.py``), one row by id
(the team-change announcement)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Activity, Document, Posting


async def activity_since(
    s: AsyncSession, since: datetime | None, before_id: int | None, limit: int
) -> list[Activity]:
    """Up to ``limit`` rows from ``since`` on, newest first, older than ``before_id`` when given."""
    stmt = select(Activity).order_by(Activity.id.desc()).limit(limit)
    if since is not None:
        stmt = stmt.where(Activity.at >= since)
    if before_id is not None:
        stmt = stmt.where(Activity.id < before_id)
    return list((await s.scalars(stmt)).all())


async def activity_row(s: AsyncSession, activity_id: int) -> Activity | None:
    """One row of the audit trail."""
    return await s.get(Activity, activity_id)


async def latest_of(s: AsyncSession, action: str, subject: str) -> int | None:
    """The id of the newest row of ``action`` on ``subject`` (the one just added, in its transaction)."""
    return await s.scalar(
        select(Activity.id)
        .where(Activity.action == action, Activity.subject == subject)
        .order_by(Activity.id.desc())
        .limit(1)
    )


async def documents_by_id(s: AsyncSession, ids: Iterable[int]) -> dict[int, Document]:
    """The documents with these ids."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return {d.id: d for d in (await s.scalars(select(Document).where(Document.id.in_(wanted)))).all()}


async def posting_documents(
    s: AsyncSession, posting_ids: Iterable[int]
) -> dict[int, tuple[Posting, Document]]:
    """Each posting with its document."""
    wanted = sorted(set(posting_ids))
    if not wanted:
        return {}
    rows = await s.execute(
        select(Posting, Document)
        .join(Document, Document.id == Posting.document_id)
        .where(Posting.id.in_(wanted))
    )
    return {p.id: (p, d) for p, d in rows.all()}
