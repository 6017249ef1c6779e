"""The read models' queries: status per integration, queues per company, what needs a
person, a document with its log, posting listings (``sync/overview.py``, ``sync/log.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attempt, Document, ErrorGroup, Integration, Lease, Posting
from storage.queries.groups import open_failing_groups
from storage.queries.postings import BACKOFF_HOLDER
from storage.states import PostingState


async def synced_since_by_integration(s: AsyncSession, since: datetime) -> dict[str, int]:
    """How many postings each integration (by name) has synced since ``since``."""
    rows = await s.execute(
        select(Integration.name, func.count())
        .join(Posting, Posting.integration_id == Integration.id)
        .where(Posting.state == PostingState.SYNCED, Posting.updated_at >= since)
        .group_by(Integration.name)
    )
    return {name: int(n) for name, n in rows.all()}


async def open_groups_by_integration(s: AsyncSession) -> dict[str, int]:
    """How many open error groups each integration (by name) has."""
    fg = open_failing_groups()
    rows = await s.execute(
        select(Integration.name, func.count())
        .join(ErrorGroup, ErrorGroup.integration_id == Integration.id)
        .join(fg, fg.c.group_id == ErrorGroup.id)
        .group_by(Integration.name)
    )
    return {name: int(n) for name, n in rows.all()}


async def queue_by_company_and_state(s: AsyncSession, states: Iterable[str]) -> Sequence[Any]:
    """Per company and state in ``states``: how many, oldest queued, next attempt due."""
    rows = await s.execute(
        select(
            Posting.company_key,
            Posting.state,
            func.count(),
            func.min(Posting.queued_at),
            func.min(Posting.next_attempt_at),
        )
        .where(Posting.state.in_(list(states)))
        .group_by(Posting.company_key, Posting.state)
    )
    return rows.all()


async def companies_resting(s: AsyncSession, now: datetime) -> dict[str, datetime]:
    """Companies a ledger asked us to leave alone for a while, and until when."""
    rows = await s.execute(
        select(Lease.key, Lease.expires_at).where(Lease.holder == BACKOFF_HOLDER, Lease.expires_at > now)
    )
    return {company: until for company, until in rows.all()}


async def open_groups_with_failures(s: AsyncSession, limit: int) -> Sequence[Any]:
    """Up to ``limit`` open error groups with failed postings, most failures first:
    the group, its integration's name, how many fail."""
    fg = open_failing_groups()
    rows = await s.execute(
        select(ErrorGroup, Integration.name, fg.c.failing)
        .join(Integration, Integration.id == ErrorGroup.integration_id)
        .join(fg, fg.c.group_id == ErrorGroup.id)
        .order_by(fg.c.failing.desc(), ErrorGroup.id)
        .limit(limit)
    )
    return rows.all()


async def booked_not_sent(s: AsyncSession, limit: int) -> Sequence[Any]:
    """Up to ``limit`` booked postings with a change (or withdrawal) not sent that nobody has
    marked handled, oldest first: the posting, its document, its integration's name."""
    rows = await s.execute(
        select(Posting, Document, Integration.name)
        .join(Document, Document.id == Posting.document_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .where(Posting.state == PostingState.BOOKED, Posting.last_error.is_not(None))
        .order_by(Posting.updated_at, Posting.id)
        .limit(limit)
    )
    return rows.all()


async def documents_failing_in_group(
    s: AsyncSession, group_id: int, limit: int
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(source, kind, id, data)`` of the documents of the group's first ``limit`` failed postings."""
    rows = await s.execute(
        select(Document.source, Document.kind, Document.external_id, Document.data)
        .join(Posting, Posting.document_id == Document.id)
        .where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
        .order_by(Posting.id)
        .limit(limit)
    )
    return [(src, kind, ext, data) for src, kind, ext, data in rows.all()]


async def documents_matching(
    s: AsyncSession, external_id: str, *, kind: str | None = None, source: str | None = None, limit: int
) -> list[Document]:
    """Documents with this id (and kind, and source, when given), oldest first."""
    stmt = select(Document).where(Document.external_id == external_id)
    if kind is not None:
        stmt = stmt.where(Document.kind == kind)
    if source is not None:
        stmt = stmt.where(Document.source == source)
    return list((await s.scalars(stmt.order_by(Document.id).limit(limit))).all())


async def document_with_integration(
    s: AsyncSession, source: str, kind: str, external_id: str
) -> tuple[Document, str] | None:
    """The source's document and its integration's name (``None``: no such document)."""
    row = (
        await s.execute(
            select(Document, Integration.name)
            .join(Integration, Integration.id == Document.integration_id)
            .where(Document.source == source, Document.kind == kind, Document.external_id == external_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def postings_of(s: AsyncSession, document_id: int) -> list[Posting]:
    """Every posting of the document, in the order they were made."""
    return list(
        (
            await s.scalars(select(Posting).where(Posting.document_id == document_id).order_by(Posting.id))
        ).all()
    )


async def attempts_of(s: AsyncSession, posting_ids: Iterable[int]) -> Sequence[Attempt]:
    """Every attempt of the postings, newest first."""
    return (
        await s.scalars(
            select(Attempt)
            .where(Attempt.posting_id.in_(list(posting_ids) or [0]))
            .order_by(Attempt.started_at.desc(), Attempt.id.desc())
        )
    ).all()


async def postings_listed(
    s: AsyncSession, *, state: str | None, integration: str | None, after_id: int | None, limit: int
) -> Sequence[Any]:
    """Up to ``limit`` postings after ``after_id`` in id order, each with its document and
    integration's name, filtered by state and integration when given."""
    stmt = (
        select(Posting, Document, Integration.name)
        .join(Document, Document.id == Posting.document_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .order_by(Posting.id)
        .limit(limit)
    )
    if state:
        stmt = stmt.where(Posting.state == state)
    if integration:
        stmt = stmt.where(Integration.name == integration)
    if after_id:
        stmt = stmt.where(Posting.id > after_id)
    return (await s.execute(stmt)).all()
