"""Error groups: one per fault and integration, counted, muted and closed.

Synchronous functions like :mod:`storage.queries.postings`, plus the async reads
the Slack side needs of a group.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Subquery, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ErrorGroup, Posting
from storage.queries.upsert import Executor, upsert_into
from storage.rows import rows_changed
from storage.states import SETTLED_STATES, PostingState


def upsert_error_group(
    conn: Executor, *, fingerprint: str, integration_id: int, code: str, title: str, now: datetime
) -> int:
    """Create the group or count one more repetition; returns its id."""
    stmt = upsert_into(conn, ErrorGroup).values(
        fingerprint=fingerprint,
        integration_id=integration_id,
        error_code=code,
        title=title,
        first_seen=now,
        last_seen=now,
        repetitions=1,
        open=True,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={"last_seen": now, "repetitions": ErrorGroup.repetitions + 1, "open": True, "title": title},
    ).returning(ErrorGroup.id)
    return int(conn.execute(stmt).scalar_one())


def close_settled_groups(conn: Executor, group_ids: list[int]) -> list[int]:
    """Close groups none of whose postings still needs anything; returns those closed."""
    if not group_ids:
        return []
    unsettled = (
        select(Posting.id)
        .where(
            Posting.error_group_id == ErrorGroup.id,
            Posting.state.not_in(SETTLED_STATES),
        )
        .exists()
    )
    result = conn.execute(
        update(ErrorGroup)
        .where(ErrorGroup.id.in_(group_ids), ErrorGroup.open.is_(True), ~unsettled)
        .values(open=False)
        .returning(ErrorGroup.id)
        .execution_options(synchronize_session=False)
    )
    return [int(i) for i in result.scalars().all()]


def mute_group(conn: Executor, group_id: int, until: datetime | None) -> bool:
    """Keep an error group's message quiet until ``until`` (``None``: speak again now)."""
    result = conn.execute(
        update(ErrorGroup)
        .where(ErrorGroup.id == group_id)
        .values(muted_until=until)
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(result))


async def group_muted_until(s: AsyncSession, group_id: int) -> datetime | None:
    """Until when a person muted the error group (``None``: not muted)."""
    return await s.scalar(select(ErrorGroup.muted_until).where(ErrorGroup.id == group_id))


async def posting_group_muted_until(s: AsyncSession, posting_id: int) -> datetime | None:
    """The mute of the error group a failed posting belongs to (``None``: none)."""
    return await s.scalar(
        select(ErrorGroup.muted_until)
        .join(Posting, Posting.error_group_id == ErrorGroup.id)
        .where(Posting.id == posting_id, Posting.state == PostingState.FAILED)
    )


async def failing_in_group(s: AsyncSession, group_id: int) -> int:
    """How many postings of the group fail right now."""
    return int(
        await s.scalar(
            select(func.count())
            .select_from(Posting)
            .where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
        )
        or 0
    )


async def failing_postings_of_group(s: AsyncSession, group_id: int) -> list[int]:
    """The ids of the group's postings that fail right now."""
    found = await s.scalars(
        select(Posting.id).where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
    )
    return [int(i) for i in found.all()]


def open_failing_groups() -> Subquery:
    """THE definition of an open error group, for every count and list of them (status,
    App Home, attention, the digest): an open group with at least one failed posting.
    Columns ``group_id`` and ``failing`` (how many of its postings fail)."""
    return (
        select(Posting.error_group_id.label("group_id"), func.count(Posting.id).label("failing"))
        .join(ErrorGroup, ErrorGroup.id == Posting.error_group_id)
        .where(ErrorGroup.open.is_(True), Posting.state == PostingState.FAILED)
        .group_by(Posting.error_group_id)
        .subquery("open_failing_groups")
    )
