"""The outage watch's reads: its rows per integration, the attempts it has not yet read,
the postings that wait with an outage and what became of them once it ended."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Attempt, Integration, Outage, Posting
from storage.rows import rows_changed
from storage.states import Outcome, PostingState


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


#: the error code of postings the age limit gave up on (``sync/give_up.py``)
GAVE_UP_CODE = "gave_up"


async def gave_up_unreachable(s: AsyncSession, integration_id: int) -> Sequence[Any]:
    """Failed postings of the integration that gave up because the ledger did not answer
    (the worker's give-up, by its newest attempt, or the age limit's): id, document, group."""
    later = aliased(Attempt)
    newest = (
        select(later.id)
        .where(later.posting_id == Posting.id)
        .order_by(later.id.desc())
        .limit(1)
        .correlate(Posting)
        .scalar_subquery()
    )
    gave_up_attempt = (
        select(Attempt.id).where(Attempt.id == newest, Attempt.gave_up.is_(True)).correlate(Posting).exists()
    )
    rows = await s.execute(
        select(Posting.id, Posting.document_id, Posting.error_group_id).where(
            Posting.integration_id == integration_id,
            Posting.state == PostingState.FAILED,
            (Posting.error_code == GAVE_UP_CODE) | gave_up_attempt,
        )
    )
    return rows.all()


async def wait_with_outage(
    s: AsyncSession, posting_ids: Sequence[int], next_try: datetime, now: datetime
) -> int:
    """The postings wait with the outage: ``retrying`` again, out of their error group."""
    if not posting_ids:
        return 0
    done = await s.execute(
        update(Posting)
        .where(Posting.id.in_(list(posting_ids)), Posting.state == PostingState.FAILED)
        .values(state=PostingState.RETRYING, error_group_id=None, next_attempt_at=next_try, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(done)


async def outcomes_since(s: AsyncSession, integration_id: int, since: datetime) -> tuple[int, int, int]:
    """Since the ledger answered again: postings sent, postings failed, and how many still wait."""
    sent = await s.scalar(
        select(func.count(func.distinct(Attempt.posting_id)))
        .join(Posting, Posting.id == Attempt.posting_id)
        .where(
            Posting.integration_id == integration_id,
            func.coalesce(Attempt.finished_at, Attempt.started_at) >= since,
            Attempt.outcome.in_([Outcome.SYNCED, Outcome.BOOKED]),
        )
    )
    failed = await s.scalar(
        select(func.count())
        .select_from(Posting)
        .where(
            Posting.integration_id == integration_id,
            Posting.state == PostingState.FAILED,
            Posting.updated_at >= since,
        )
    )
    waiting = await s.scalar(
        select(func.count())
        .select_from(Posting)
        .where(
            Posting.integration_id == integration_id,
            Posting.state.in_([PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING]),
        )
    )
    return int(sent or 0), int(failed or 0), int(waiting or 0)
