"""The outbox rows (``slack_messages``): every state move is one guarded statement.

Row life::

    to_post --claim--> sending --ok--> posted --subject changed--> to_update --ok--> posted
       ^                  |  \\--refused/429/unreachable--> to_post (later)
       |                  \\--outcome unknown / process died--> unconfirmed
       |                                                            |  history read fails: later
       \\------- not in the channel's history ------------------------+
                           found in the channel's history: ts adopted --> to_update

``revision`` grows with every change of the subject; a send settles the row
(``posted``) only if no newer revision came in meanwhile, else it stays due.
Several processes may run senders: a row is claimed by a guarded update
before any Slack call, so only one of them sends it (or looks it up).
``created_at`` is when the row's current message was queued (a new incident
or a deleted message starts it again): with the row id it names the message
in Slack's metadata (``bot/outbox/unconfirmed_posts.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SlackMessage
from storage.queries.upsert import upsert_into
from storage.rows import rows_changed
from storage.states import MessageState

#: ``unconfirmed`` rows are due for a look into the channel's history
DUE_STATES = (MessageState.TO_POST, MessageState.TO_UPDATE, MessageState.UNCONFIRMED)
CHUNK = 500


async def ensure_row(
    s: AsyncSession, subject_type: str, subject_id: int, channel: str, now: datetime, due: datetime
) -> None:
    """A row to post for the subject, unless one exists already."""
    await s.execute(
        upsert_into(s, SlackMessage)
        .values(
            subject_type=subject_type,
            subject_id=str(subject_id),
            channel=channel,
            state=MessageState.TO_POST,
            attempts=0,
            revision=0,
            next_attempt_at=due,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subject_type", "subject_id", "channel"])
    )


async def rows_for(
    s: AsyncSession, subject_type: str, subject_ids: Iterable[int]
) -> dict[int, list[SlackMessage]]:
    """Existing rows by subject id."""
    ids = sorted({str(i) for i in subject_ids})
    found: dict[int, list[SlackMessage]] = {}
    for start in range(0, len(ids), CHUNK):
        rows = (
            await s.scalars(
                select(SlackMessage).where(
                    SlackMessage.subject_type == subject_type,
                    SlackMessage.subject_id.in_(ids[start : start + CHUNK]),
                )
            )
        ).all()
        for row in rows:
            found.setdefault(int(row.subject_id), []).append(row)
    return found


async def subjects_with_rows(s: AsyncSession, subject_type: str, subject_ids: Iterable[int]) -> set[int]:
    """Which of the subjects have a message row (one index look-up per chunk)."""
    ids = sorted({str(i) for i in subject_ids})
    found: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        found.update(
            int(i)
            for i in (
                await s.scalars(
                    select(SlackMessage.subject_id).where(
                        SlackMessage.subject_type == subject_type,
                        SlackMessage.subject_id.in_(ids[start : start + CHUNK]),
                    )
                )
            ).all()
        )
    return found


async def mark_changed(s: AsyncSession, subject_type: str, subject_ids: Iterable[int], now: datetime) -> None:
    """The subjects changed: posted messages become due for an update (rebuilt at send time).

    An ``unconfirmed`` post stays so until the channel's history says whether it
    is there (then it is updated, or posted, with the state of then).
    """
    ids = sorted({str(i) for i in subject_ids})
    for start in range(0, len(ids), CHUNK):
        await s.execute(
            update(SlackMessage)
            .where(
                SlackMessage.subject_type == subject_type,
                SlackMessage.subject_id.in_(ids[start : start + CHUNK]),
            )
            .values(
                revision=SlackMessage.revision + 1,
                state=case(
                    (SlackMessage.state == MessageState.POSTED, MessageState.TO_UPDATE.value),
                    else_=SlackMessage.state,
                ),
                next_attempt_at=case(
                    (SlackMessage.state == MessageState.POSTED, now),
                    (
                        SlackMessage.state == MessageState.UNCONFIRMED,
                        func.coalesce(SlackMessage.next_attempt_at, now),
                    ),
                    else_=SlackMessage.next_attempt_at,
                ),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )


async def reopen(s: AsyncSession, row_id: int, due: datetime, now: datetime) -> None:
    """A new incident for a subject whose message shows it settled: post a new message."""
    await s.execute(
        update(SlackMessage)
        .where(
            SlackMessage.id == row_id, SlackMessage.state.in_([MessageState.POSTED, MessageState.TO_UPDATE])
        )
        .values(
            **_as_a_new_post(now, due),
            subject_status=None,
            revision=SlackMessage.revision + 1,
        )
        .execution_options(synchronize_session=False)
    )


def _as_a_new_post(now: datetime, due: datetime) -> dict[str, Any]:
    """A row's values when its message is to be posted anew (forgetting the old one)."""
    return {
        "state": MessageState.TO_POST,
        "ts": None,
        "thread_ts": None,
        "threaded_attempt_id": None,
        "rendered_hash": None,
        "attempts": 0,
        "next_attempt_at": due,
        "created_at": now,  # a new message: its own identity in Slack's metadata
        "updated_at": now,
    }


async def repost(s: AsyncSession, row_id: int, now: datetime) -> None:
    """The message is gone from Slack (deleted): post it again, whatever its subject says."""
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id)
        .values(
            **_as_a_new_post(now, now),
            subject_status=func.coalesce(SlackMessage.subject_status, "gone"),
        )
        .execution_options(synchronize_session=False)
    )


async def posted_messages_not_showing(s: AsyncSession, settled: Sequence[str]) -> list[tuple[str, str]]:
    """``(subject_type, subject_id)`` of posted messages not showing a ``settled`` status."""
    shown = or_(SlackMessage.subject_status.is_(None), SlackMessage.subject_status.not_in(list(settled)))
    stmt = select(SlackMessage.subject_type, SlackMessage.subject_id)
    rows = await s.execute(stmt.where(SlackMessage.state == MessageState.POSTED, shown))
    return list(rows.all())


async def due_rows(s: AsyncSession, now: datetime, limit: int) -> Sequence[SlackMessage]:
    return (
        await s.scalars(
            select(SlackMessage)
            .where(SlackMessage.state.in_(DUE_STATES), SlackMessage.next_attempt_at <= now)
            .order_by(SlackMessage.next_attempt_at, SlackMessage.id)
            .limit(limit)
        )
    ).all()


async def next_due(s: AsyncSession) -> datetime | None:
    return await s.scalar(
        select(func.min(SlackMessage.next_attempt_at)).where(SlackMessage.state.in_(DUE_STATES))
    )


async def claim(s: AsyncSession, row: SlackMessage, now: datetime, ttl: timedelta) -> bool:
    """Take the row for one send; a post becomes ``sending`` (its outcome matters)."""
    new_state = MessageState.SENDING if row.state == MessageState.TO_POST else row.state
    done = await s.execute(
        update(SlackMessage)
        .where(
            SlackMessage.id == row.id, SlackMessage.state == row.state, SlackMessage.next_attempt_at <= now
        )
        .values(
            state=new_state, next_attempt_at=now + ttl, attempts=SlackMessage.attempts + 1, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(done))


async def defer(s: AsyncSession, row: SlackMessage, until: datetime, now: datetime) -> None:
    """Not now (the channel's pace or a 429): due again at ``until``."""
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row.id, SlackMessage.state == row.state)
        .values(next_attempt_at=until, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def settle(
    s: AsyncSession,
    row_id: int,
    revision: int,
    now: datetime,
    *,
    rendered_hash: str,
    subject_status: str,
    ts: str | None = None,
    threaded_attempt_id: int | None = None,
    more_at: datetime | None = None,
) -> None:
    """The send went through: ``posted``, unless the subject changed meanwhile (or more
    thread replies wait for the channel's pace, ``more_at``)."""
    values: dict[str, Any] = dict(
        rendered_hash=rendered_hash,
        subject_status=subject_status,
        attempts=0,
        last_error=None,
        updated_at=now,
    )
    if ts is not None:
        values.update(ts=ts, thread_ts=ts)
    if threaded_attempt_id is not None:
        values["threaded_attempt_id"] = threaded_attempt_id
    current = SlackMessage.revision == revision
    if more_at is None:
        values["state"] = case((current, MessageState.POSTED.value), else_=MessageState.TO_UPDATE.value)
        values["next_attempt_at"] = case((current, None), else_=now)
    else:
        values["state"] = MessageState.TO_UPDATE
        values["next_attempt_at"] = case((current, more_at), else_=now)
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def retry_later(
    s: AsyncSession, row_id: int, state: str, at: datetime, error: str, now: datetime
) -> None:
    """The send did not happen (Slack said so, or could not be reached): try again at ``at``."""
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id)
        .values(state=state, next_attempt_at=at, last_error=error[:500], updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def unconfirmed(
    s: AsyncSession, row_id: int, error: str, now: datetime, subject_status: str, look_at: datetime
) -> None:
    """A post that may have gone through: at ``look_at`` the channel's history decides.

    ``subject_status`` records that a message may be in the channel.
    """
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id)
        .values(
            state=MessageState.UNCONFIRMED,
            next_attempt_at=look_at,
            last_error=error[:500],
            subject_status=subject_status,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


async def adopt(
    s: AsyncSession,
    row_id: int,
    now: datetime,
    *,
    ts: str,
    rendered_hash: str,
    subject_status: str,
    threaded_attempt_id: int | None,
) -> None:
    """The unconfirmed post is in the channel: it is the row's message (updated if it is stale)."""
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id, SlackMessage.state == MessageState.UNCONFIRMED)
        .values(
            state=MessageState.TO_UPDATE,
            ts=ts,
            thread_ts=ts,
            rendered_hash=rendered_hash,
            subject_status=subject_status or SlackMessage.subject_status,
            threaded_attempt_id=threaded_attempt_id,
            attempts=0,
            last_error=None,
            next_attempt_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


async def not_posted(s: AsyncSession, row_id: int, now: datetime) -> None:
    """The unconfirmed post is not in the channel: post it (as if it had never been tried)."""
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id, SlackMessage.state == MessageState.UNCONFIRMED)
        .values(
            state=MessageState.TO_POST,
            subject_status=None,
            attempts=0,
            next_attempt_at=now,
            last_error="not in the channel after an unknown outcome; posted again",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


async def unconfirmed_since(s: AsyncSession, channel: str) -> datetime | None:
    """When the oldest unconfirmed post of the channel was queued (how far back to read)."""
    return await s.scalar(
        select(func.min(SlackMessage.created_at)).where(
            SlackMessage.channel == channel, SlackMessage.state == MessageState.UNCONFIRMED
        )
    )


async def set_threaded(s: AsyncSession, row_id: int, old: int | None, new: int | None) -> bool:
    """Move the thread marker from ``old`` to ``new`` (guarded: one sender per reply)."""
    cond = (
        SlackMessage.threaded_attempt_id.is_(None) if old is None else SlackMessage.threaded_attempt_id == old
    )
    done = await s.execute(
        update(SlackMessage)
        .where(SlackMessage.id == row_id, cond)
        .values(threaded_attempt_id=new)
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(done))


async def expire_sending(s: AsyncSession, now: datetime) -> int:
    """Posts claimed by a process that never came back: their outcome is unknown (look now)."""
    done = await s.execute(
        update(SlackMessage)
        .where(SlackMessage.state == MessageState.SENDING, SlackMessage.next_attempt_at < now)
        .values(
            state=MessageState.UNCONFIRMED,
            next_attempt_at=now,
            subject_status=func.coalesce(SlackMessage.subject_status, "unconfirmed"),
            last_error="the sender stopped while posting; outcome unknown",
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    # rows left unconfirmed for good by versions that did not look them up
    await s.execute(
        update(SlackMessage)
        .where(SlackMessage.state == MessageState.UNCONFIRMED, SlackMessage.next_attempt_at.is_(None))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(done)


async def drop(s: AsyncSession, row_id: int) -> None:
    """A row never posted whose subject no longer needs a message of its own."""
    await s.execute(delete(SlackMessage).where(SlackMessage.id == row_id, SlackMessage.ts.is_(None)))
