"""The outage watch's reads: its rows per integration and the attempts it has not yet read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Attempt, Integration, Outage, Posting
from storage.states import PostingState


async def integrations_by_id(s: AsyncSession) -> dict[int, Integration]:
    """Every integration, by id."""
    return {i.id: i for i in (await s.scalars(select(Integration))).all()}


async def outage_rows(s: AsyncSession) -> dict[int, Outage]:
    """The watch's row of each integration it has seen, by integration id."""
    return {r.integration_id: r for r in (await s.scalars(select(Outage))).all()}


async def newest_attempt_id(s: AsyncSession) -> int:
    """The id of the newest attempt of any posting (0: none yet)."""
    return int(await s.scalar(select(func.max(Attempt.id))) or 0)


async def attempts_after(s: AsyncSession, after_id: int, limit: int) -> Sequence[Any]:
    """Up to ``limit`` attempts after ``after_id``, oldest first, with their integration id."""
    rows = await s.execute(
        select(
            Attempt.id,
            Attempt.outcome,
            Attempt.started_at,
            Attempt.finished_at,
            Attempt.error_code,
            Attempt.message,
            Attempt.gave_up,
            Posting.integration_id,
        )
        .join(Posting, Posting.id == Attempt.posting_id)
        .where(Attempt.id > after_id)
        .order_by(Attempt.id)
        .limit(limit)
    )
    return rows.all()


async def retrying_by_integration(s: AsyncSession) -> dict[int, tuple[int, datetime | None]]:
    """Per integration with retrying postings: the most attempts one has made, the next retry."""
    rows = await s.execute(
        select(Posting.integration_id, func.max(Posting.attempts), func.min(Posting.next_attempt_at))
        .where(Posting.state == PostingState.RETRYING)
        .group_by(Posting.integration_id)
    )
    return {iid: (n, at) for iid, n, at in rows.all()}


async def outage_of_integration(s: AsyncSession, integration_id: int) -> tuple[Outage, str, str] | None:
    """The integration's outage row with its name and kind (``None``: never watched)."""
    found = (
        await s.execute(
            select(Outage, Integration.name, Integration.kind)
            .join(Integration, Integration.id == Outage.integration_id)
            .where(Outage.integration_id == integration_id)
        )
    ).one_or_none()
    return None if found is None else (found[0], found[1], found[2])
