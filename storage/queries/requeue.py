"""Queue postings again: a person's resync, ignore, history transfer, a mapping set, bulk resync.

Every statement is guarded by the states it may move from, so a double click (or
two replicas) moves a posting once; the caller learns how many (or which) moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Document, Posting, table_of
from storage.rows import rows_changed
from storage.states import PostingState, Trigger

_P = table_of(Posting)
_REFRESH_HASH = update(_P).where(_P.c.id == bindparam("pid")).values(desired_hash=bindparam("dh"))


async def requeue_postings(
    s: AsyncSession,
    ids: Sequence[int] | Any,
    *,
    state: PostingState,
    now: datetime,
    actor: str | None,
    clear_error: bool,
) -> int:
    """Queue again (a person's doing) the postings ``ids`` (a list or a select) still in ``state``.

    ``clear_error``: forget why they waited or failed (a history transfer); a mapping
    set keeps the old failure readable until the next attempt replaces it.
    """
    values: dict[str, Any] = dict(
        state=PostingState.PENDING,
        queued_at=now,
        next_attempt_at=now,
        updated_at=now,
        queued_trigger=Trigger.MANUAL,
        queued_actor=actor,
    )
    if clear_error:
        values.update(error_code=None, last_error=None)
    done = await s.execute(
        update(Posting)
        .where(Posting.id.in_(ids), Posting.state == state)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(done)


def _waiting_for_history(
    integration_id: int, wait_code: str, since: date, history_start: date | None
) -> list[Any]:
    cond = [
        Posting.integration_id == integration_id,
        Posting.state == PostingState.WAITING,
        Posting.error_code == wait_code,
        Document.doc_date >= since,
    ]
    if history_start:
        cond.append(Document.doc_date < history_start)
    return cond


async def count_waiting_for_history(
    s: AsyncSession, integration_id: int, wait_code: str, since: date, history_start: date | None
) -> int:
    """Postings waiting (``wait_code``) for the history start, of documents dated from ``since``."""
    return int(
        await s.scalar(
            select(func.count())
            .select_from(Posting)
            .join(Document, Document.id == Posting.document_id)
            .where(*_waiting_for_history(integration_id, wait_code, since, history_start))
        )
        or 0
    )


async def requeue_waiting_for_history(
    s: AsyncSession,
    integration_id: int,
    wait_code: str,
    since: date,
    history_start: date | None,
    *,
    now: datetime,
    actor: str | None,
) -> int:
    """Queue the postings :func:`count_waiting_for_history` counts; how many moved."""
    ids = (
        select(Posting.id)
        .join(Document, Document.id == Posting.document_id)
        .where(*_waiting_for_history(integration_id, wait_code, since, history_start))
    )
    return await requeue_postings(s, ids, state=PostingState.WAITING, now=now, actor=actor, clear_error=True)


async def force_requeue(
    s: AsyncSession,
    posting_id: int,
    allowed: Sequence[str],
    *,
    now: datetime,
    trigger: Trigger,
    actor: str | None,
    desired_hash: str | None = None,
) -> bool:
    """A person's resync of one posting, if still in an ``allowed`` state (and its new content)."""
    values: dict[str, Any] = dict(
        state=PostingState.PENDING,
        queued_at=now,
        next_attempt_at=now,
        updated_at=now,
        queued_trigger=trigger,
        queued_actor=actor,
        force=True,
    )
    if desired_hash is not None:
        values["desired_hash"] = desired_hash
    done = await s.execute(
        update(Posting)
        .where(Posting.id == posting_id, Posting.state.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(done))


async def force_requeue_many(
    s: AsyncSession,
    posting_ids: Sequence[int],
    allowed: Sequence[str],
    *,
    now: datetime,
    trigger: Trigger,
    actor: str | None,
) -> set[int]:
    """Bulk resync of a chunk: the postings still in an ``allowed`` state, queued; their ids."""
    done = await s.execute(
        update(_P)
        .where(_P.c.id.in_(list(posting_ids)), _P.c.state.in_(list(allowed)))
        .values(
            state=PostingState.PENDING,
            queued_at=now,
            next_attempt_at=now,
            updated_at=now,
            queued_trigger=trigger,
            queued_actor=actor,
            force=True,
        )
        .returning(_P.c.id)
    )
    return set(done.scalars().all())


async def refresh_desired_hashes(s: AsyncSession, hashes: Sequence[tuple[int, str]]) -> None:
    """New desired content of postings queued again, ``(posting id, hash)`` (one executemany)."""
    if hashes:
        await s.execute(_REFRESH_HASH, [{"pid": pid, "dh": dh} for pid, dh in hashes])


async def ignore_if_in(
    s: AsyncSession, posting_id: int, allowed: Sequence[str], *, now: datetime, actor: str | None
) -> bool:
    """A person ignores the posting, if it is still in an ``allowed`` state."""
    done = await s.execute(
        update(Posting)
        .where(Posting.id == posting_id, Posting.state.in_(allowed))
        .values(state=PostingState.IGNORED, updated_at=now, queued_actor=actor)
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(done))
