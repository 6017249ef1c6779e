"""The few hot queries: claim due work, hold company leases, group errors.

Each is one statement where it can be, so it is atomic on SQLite and
PostgreSQL alike and safe when several processes run it at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Document, ErrorGroup, Integration, Lease, Posting
from storage.states import PostingState


def _insert(session: AsyncSession, table: Any) -> Any:
    return (pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert)(table)


async def release_due_retries(session: AsyncSession, now: datetime) -> int:
    """``retrying`` postings whose backoff has passed go back to ``pending``."""
    result = await session.execute(
        update(Posting)
        .where(Posting.state == PostingState.RETRYING, Posting.next_attempt_at <= now)
        .values(state=PostingState.PENDING, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


async def recover_stuck(session: AsyncSession, now: datetime, company: str | None = None) -> list[int]:
    """``in_flight`` past its lease -> ``pending`` with look-up-first (a worker died)."""
    cond = [Posting.state == PostingState.IN_FLIGHT, Posting.lease_expires_at < now]
    if company is not None:
        cond.append(Posting.company_key == company)
    ids = list((await session.scalars(select(Posting.id).where(*cond))).all())
    if ids:
        await session.execute(
            update(Posting)
            .where(Posting.id.in_(ids), Posting.state == PostingState.IN_FLIGHT)
            .values(state=PostingState.PENDING, lookup_first=True, queued_trigger="sweeper",
                    lease_expires_at=None, next_attempt_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return ids


async def due_companies(session: AsyncSession, now: datetime, limit: int,
                        exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Companies with due pending postings, oldest queue first, not held by anyone."""
    oldest = func.min(Posting.queued_at)
    stmt = (
        select(Posting.company_key)
        .join(Integration, Integration.id == Posting.integration_id)
        .outerjoin(Lease, Lease.key == Posting.company_key)
        .where(
            Posting.state == PostingState.PENDING,
            Posting.next_attempt_at <= now,
            Integration.paused.is_(False),
            or_(Lease.key.is_(None), Lease.expires_at < now),
        )
        .group_by(Posting.company_key)
        .order_by(oldest)
        .limit(limit + len(exclude))
    )
    return [c for c in (await session.scalars(stmt)).all() if c not in exclude][:limit]


async def acquire_lease(session: AsyncSession, key: str, holder: str, now: datetime,
                        until: datetime) -> bool:
    """Take the company's lease if free or expired (or already ours)."""
    result = await session.execute(
        update(Lease)
        .where(Lease.key == key, or_(Lease.expires_at < now, Lease.holder == holder))
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:
        return True
    inserted = await session.execute(
        _insert(session, Lease)
        .values(key=key, holder=holder, expires_at=until)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(inserted.rowcount)


async def extend_lease(session: AsyncSession, key: str, holder: str, until: datetime) -> bool:
    result = await session.execute(
        update(Lease).where(Lease.key == key, Lease.holder == holder).values(expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


async def release_lease(session: AsyncSession, key: str, holder: str,
                        hold_until: datetime | None = None) -> None:
    """Give the lease back; ``hold_until`` keeps the company resting (ledger backoff)."""
    if hold_until is None:
        await session.execute(delete(Lease).where(Lease.key == key, Lease.holder == holder))
    else:
        await session.execute(
            update(Lease).where(Lease.key == key, Lease.holder == holder)
            .values(holder=BACKOFF_HOLDER, expires_at=hold_until)
            .execution_options(synchronize_session=False)
        )


#: the holder name of a lease that only makes a company rest after a ledger failure
BACKOFF_HOLDER = "backoff"


async def clear_backoff(session: AsyncSession, key: str) -> None:
    """A person asked for work now: end a company's rest (never a live worker's lease)."""
    await session.execute(delete(Lease).where(Lease.key == key, Lease.holder == BACKOFF_HOLDER))


async def claim_next(session: AsyncSession, company: str, now: datetime,
                     lease_until: datetime) -> Any | None:
    """Move the company's first due posting to ``in_flight``; return it with its document."""
    head = (
        select(Posting.id)
        .where(Posting.company_key == company, Posting.state == PostingState.PENDING,
               Posting.next_attempt_at <= now)
        .order_by(Posting.queued_at, Posting.id)
        .limit(1)
        .scalar_subquery()
    )
    claimed = await session.execute(
        update(Posting)
        .where(Posting.id == head, Posting.state == PostingState.PENDING)
        .values(state=PostingState.IN_FLIGHT, lease_expires_at=lease_until, updated_at=now)
        .returning(Posting.id)
        .execution_options(synchronize_session=False)
    )
    posting_id = claimed.scalar_one_or_none()
    if posting_id is None:
        return None
    row = await session.execute(
        select(
            Posting.id, Posting.kind, Posting.slot, Posting.period, Posting.external_ref,
            Posting.desired_hash, Posting.synced_hash, Posting.sent_hash, Posting.lookup_first,
            Posting.force, Posting.attempts, Posting.queued_trigger, Posting.queued_actor,
            Posting.idempotency_key, Posting.error_group_id, Posting.document_id,
            Document.kind.label("doc_kind"), Document.source, Document.external_id,
            Document.data, Integration.name.label("integration"),
        )
        .join(Document, Document.id == Posting.document_id)
        .join(Integration, Integration.id == Posting.integration_id)
        .where(Posting.id == posting_id)
    )
    return row.one()


async def upsert_error_group(session: AsyncSession, *, fingerprint: str, integration_id: int,
                             code: str, title: str, now: datetime) -> int:
    """Create the group or count one more repetition; returns its id."""
    stmt = _insert(session, ErrorGroup).values(
        fingerprint=fingerprint, integration_id=integration_id, error_code=code, title=title,
        first_seen=now, last_seen=now, repetitions=1, open=True,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["fingerprint"],
        set_={"last_seen": now, "repetitions": ErrorGroup.repetitions + 1, "open": True,
              "title": title},
    ).returning(ErrorGroup.id)
    return int((await session.execute(stmt)).scalar_one())


async def close_settled_groups(session: AsyncSession, group_ids: list[int]) -> list[int]:
    """Close groups none of whose postings still needs anything; returns those closed."""
    if not group_ids:
        return []
    unsettled = (
        select(Posting.id)
        .where(Posting.error_group_id == ErrorGroup.id,
               Posting.state.not_in([PostingState.SYNCED, PostingState.BOOKED,
                                     PostingState.IGNORED]))
        .exists()
    )
    result = await session.execute(
        update(ErrorGroup)
        .where(ErrorGroup.id.in_(group_ids), ErrorGroup.open.is_(True), ~unsettled)
        .values(open=False)
        .returning(ErrorGroup.id)
        .execution_options(synchronize_session=False)
    )
    return [int(i) for i in result.scalars().all()]

