"""Counts and sums for the operations views: ``/metrics``, the daily digest, the ledger panel."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attempt, Document, ErrorGroup, Integration, JobRun, Posting
from storage.queries.groups import open_failing_groups
from storage.states import PostingState


async def postings_by_integration_and_state(s: AsyncSession) -> dict[tuple[str, str], int]:
    """How many postings each integration has in each state."""
    rows = await s.execute(
        select(Integration.name, Posting.state, func.count())
        .join(Posting, Posting.integration_id == Integration.id)
        .group_by(Integration.name, Posting.state)
    )
    return {(i, st): int(n) for i, st, n in rows.all()}


async def attempts_by_integration_and_outcome(s: AsyncSession) -> dict[tuple[str, str], int]:
    """How many attempts of each outcome each integration has made."""
    rows = await s.execute(
        select(Integration.name, Attempt.outcome, func.count())
        .join(Posting, Posting.id == Attempt.posting_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .group_by(Integration.name, Attempt.outcome)
    )
    return {(i, o): int(n) for i, o, n in rows.all()}


async def oldest_queued_by_company(s: AsyncSession, states: Iterable[str]) -> dict[str, datetime]:
    """Per company, when its oldest posting in one of ``states`` was queued."""
    rows = await s.execute(
        select(Posting.company_key, func.min(Posting.queued_at))
        .where(Posting.state.in_(list(states)))
        .group_by(Posting.company_key)
    )
    return {c: t for c, t in rows.all() if t is not None}


async def postings_of_integration_by_state(s: AsyncSession, integration_id: int | None) -> dict[str, int]:
    """How many postings one integration has in each state."""
    rows = await s.execute(
        select(Posting.state, func.count())
        .where(Posting.integration_id == integration_id)
        .group_by(Posting.state)
    )
    return dict(rows.all())


async def newest_attempts_of_integration(s: AsyncSession, name: str, limit: int) -> Sequence[Any]:
    """The integration's newest attempts, each with its posting kind, document kind and id."""
    rows = await s.execute(
        select(Attempt, Posting.kind, Document.kind, Document.external_id)
        .join(Posting, Posting.id == Attempt.posting_id)
        .join(Document, Document.id == Posting.document_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .where(Integration.name == name)
        .order_by(Attempt.id.desc())
        .limit(limit)
    )
    return rows.all()


async def next_retry_of_integration(s: AsyncSession, integration_id: int | None) -> datetime | None:
    """When the integration's next retrying posting is due (``None``: none is retrying)."""
    return (
        await s.execute(
            select(Posting.next_attempt_at)
            .where(Posting.integration_id == integration_id, Posting.state == PostingState.RETRYING)
            .order_by(Posting.next_attempt_at)
            .limit(1)
        )
    ).scalar_one_or_none()


async def previous_job_run_at(s: AsyncSession, job: str, run_id: int) -> datetime | None:
    """When ``job`` last ran before the run ``run_id``."""
    return await s.scalar(select(func.max(JobRun.ran_at)).where(JobRun.job == job, JobRun.id != run_id))


async def postings_per_integration(
    s: AsyncSession, states: Iterable[str], updated_after: datetime | None = None
) -> dict[int, int]:
    """By integration id, how many postings are in one of ``states`` (changed after ``updated_after``)."""
    cond: list[ColumnElement[bool]] = [Posting.state.in_(list(states))]
    if updated_after is not None:
        cond.append(Posting.updated_at > updated_after)
    rows = await s.execute(
        select(Posting.integration_id, func.count()).where(*cond).group_by(Posting.integration_id)
    )
    return dict(rows.all())


async def integrations_by_name(s: AsyncSession) -> Sequence[Integration]:
    """Every integration, by name."""
    return (await s.scalars(select(Integration).order_by(Integration.name))).all()


async def open_groups_by_failing(s: AsyncSession) -> Sequence[Any]:
    """Open error groups with failed postings: id, title, integration, how many fail; most first."""
    fg = open_failing_groups()
    rows = await s.execute(
        select(ErrorGroup.id, ErrorGroup.title, Integration.name, fg.c.failing)
        .join(Integration, Integration.id == ErrorGroup.integration_id)
        .join(fg, fg.c.group_id == ErrorGroup.id)
        .order_by(fg.c.failing.desc(), ErrorGroup.id)
    )
    return rows.all()


async def document_kinds_failing_in_group(s: AsyncSession, group_id: int) -> frozenset[str]:
    """The kinds of document whose postings fail in the error group."""
    kinds = await s.scalars(
        select(Document.kind)
        .distinct()
        .join(Posting, Posting.document_id == Document.id)
        .where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
    )
    return frozenset(kinds.all())
