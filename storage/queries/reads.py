"""What a Slack message or a log shows of a posting, a document or an error group.

Plain reads over an ``AsyncSession``; ``bot/notices.py`` turns them into the
facts a message is built from.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Activity, Attempt, Document, ErrorGroup, Integration, Posting
from storage.states import Outcome, PostingState


async def postings_to_show(s: AsyncSession, posting_ids: Sequence[int]) -> Sequence[Any]:
    """State, last error, error group, integration and document of each posting, by id."""
    rows = await s.execute(
        select(
            Posting.id,
            Posting.state,
            Posting.last_error,
            Posting.error_group_id,
            Posting.integration_id,
            Posting.document_id,
        )
        .where(Posting.id.in_(posting_ids))
        .order_by(Posting.id)
    )
    return rows.all()


async def postings_needing_a_person(s: AsyncSession) -> Sequence[int]:
    """Failed postings, and booked ones whose change the ledger refused."""
    found = await s.scalars(
        select(Posting.id).where(
            or_(
                Posting.state == PostingState.FAILED,
                (Posting.state == PostingState.BOOKED) & Posting.last_error.is_not(None),
            )
        )
    )
    return found.all()


async def posting_with_document(s: AsyncSession, posting_id: int) -> tuple[Posting, Document, str] | None:
    """The posting, its document and its integration's name (``None``: no such posting)."""
    row = (
        await s.execute(
            select(Posting, Document, Integration.name)
            .join(Document, Document.id == Posting.document_id)
            .join(Integration, Integration.id == Posting.integration_id)
            .where(Posting.id == posting_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


async def states_of_document_postings(
    s: AsyncSession, document_id: int, integration_id: int
) -> dict[str, str]:
    """The state of each posting (by slot: kind, plus period for journals) of a document in one
    integration."""
    rows = await s.execute(
        select(Posting.slot, Posting.state).where(
            Posting.document_id == document_id, Posting.integration_id == integration_id
        )
    )
    return dict(rows.all())


async def dependencies_of_document(
    s: AsyncSession, document_id: int, integration_id: int
) -> dict[str, tuple[str, str, str | None]]:
    """Each posting of a document in one integration by slot: (kind, state, the slot it waits for)."""
    rows = await s.execute(
        select(Posting.slot, Posting.kind, Posting.state, Posting.depends_on).where(
            Posting.document_id == document_id, Posting.integration_id == integration_id
        )
    )
    return {slot: (kind, state, on) for slot, kind, state, on in rows.all()}


async def last_attempt_of_posting(s: AsyncSession, posting_id: int) -> Any | None:
    """When the posting's newest attempt finished, how, who or what ran it, and whether it gave up."""
    return (
        await s.execute(
            select(Attempt.finished_at, Attempt.outcome, Attempt.actor, Attempt.trigger, Attempt.gave_up)
            .where(Attempt.posting_id == posting_id)
            .order_by(Attempt.id.desc())
            .limit(1)
        )
    ).one_or_none()


async def last_attempt_id(s: AsyncSession, posting_id: int) -> int | None:
    """The id of the posting's newest attempt (``None``: never tried)."""
    return await s.scalar(select(func.max(Attempt.id)).where(Attempt.posting_id == posting_id))


async def attempts_of_posting(s: AsyncSession, posting_id: int, after_id: int | None) -> Sequence[Attempt]:
    """The posting's attempts newer than ``after_id``, oldest first."""
    stmt = select(Attempt).where(Attempt.posting_id == posting_id).order_by(Attempt.id)
    if after_id is not None:
        stmt = stmt.where(Attempt.id > after_id)
    return (await s.scalars(stmt)).all()


async def group_with_integration(s: AsyncSession, group_id: int) -> tuple[ErrorGroup, str] | None:
    """The error group and its integration's name (``None``: no such group)."""
    row = (
        await s.execute(
            select(ErrorGroup, Integration.name)
            .join(Integration, Integration.id == ErrorGroup.integration_id)
            .where(ErrorGroup.id == group_id)
        )
    ).one_or_none()
    return None if row is None else (row[0], row[1])


async def group_postings_by_state(s: AsyncSession, group_id: int) -> dict[str, int]:
    """How many postings of the error group are in each state."""
    rows = await s.execute(
        select(Posting.state, func.count()).where(Posting.error_group_id == group_id).group_by(Posting.state)
    )
    return dict(rows.all())


async def document_kinds_of_group(s: AsyncSession, group_id: int) -> frozenset[str]:
    """The kinds of document (bill, payroll run) the error group's postings belong to."""
    kinds = await s.scalars(
        select(Document.kind)
        .distinct()
        .join(Posting, Posting.document_id == Document.id)
        .where(Posting.error_group_id == group_id)
    )
    return frozenset(kinds.all())


async def failed_postings_of_group(s: AsyncSession, group_id: int, limit: int) -> list[tuple[Document, str]]:
    """The first ``limit`` failed postings of the group: their document and posting kind."""
    rows = await s.execute(
        select(Document, Posting.kind)
        .join(Posting, Posting.document_id == Document.id)
        .where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
        .order_by(Posting.id)
        .limit(limit)
    )
    return [(d, k) for d, k in rows.all()]


async def people_who_queued_group(
    s: AsyncSession, group_id: int, states: Iterable[str], limit: int = 10
) -> Sequence[str]:
    """Who asked again for postings of the group that are still in one of ``states``."""
    found = await s.scalars(
        select(Posting.queued_actor)
        .distinct()
        .where(
            Posting.error_group_id == group_id,
            Posting.state.in_(list(states)),
            Posting.queued_actor.is_not(None),
        )
        .limit(limit)
    )
    return [str(a) for a in found.all()]


async def last_try_of_group(s: AsyncSession, group_id: int, since: datetime) -> Any | None:
    """The newest attempt a person asked for on a posting of the group since ``since``:
    when, who, its outcome and message (``None``: nobody tried)."""
    row = (
        await s.execute(
            select(Attempt.started_at, Attempt.actor, Attempt.outcome, Attempt.message)
            .join(Posting, Posting.id == Attempt.posting_id)
            .where(
                Posting.error_group_id == group_id,
                Attempt.actor.is_not(None),
                Attempt.started_at >= since,
            )
            .order_by(Attempt.id.desc())
            .limit(1)
        )
    ).first()
    return row


async def people_who_fixed_group(
    s: AsyncSession, group_id: int, since: datetime, limit: int = 10
) -> Sequence[str]:
    """Who asked for an attempt that synced a posting of the group since ``since``."""
    found = await s.scalars(
        select(Attempt.actor)
        .distinct()
        .join(Posting, Posting.id == Attempt.posting_id)
        .where(
            Posting.error_group_id == group_id,
            Attempt.outcome == Outcome.SYNCED,
            Attempt.actor.is_not(None),
            Attempt.started_at >= since,
        )
        .limit(limit)
    )
    return [str(a) for a in found.all()]


async def integration_name(s: AsyncSession, integration_id: int) -> str | None:
    """The integration's name (``None``: no such integration)."""
    return await s.scalar(select(Integration.name).where(Integration.id == integration_id))


async def postings_of_document(s: AsyncSession, document_id: int, integration_id: int) -> list[Posting]:
    """Every posting the document has in one integration."""
    found = await s.scalars(
        select(Posting).where(Posting.document_id == document_id, Posting.integration_id == integration_id)
    )
    return list(found.all())


async def newest_attempts_of(s: AsyncSession, posting_ids: Iterable[int], limit: int) -> Sequence[Attempt]:
    """The newest ``limit`` attempts of the postings, newest first."""
    ids = list(posting_ids) or [0]
    return (
        await s.scalars(
            select(Attempt).where(Attempt.posting_id.in_(ids)).order_by(Attempt.id.desc()).limit(limit)
        )
    ).all()


async def newest_actions_on(
    s: AsyncSession, subjects: Iterable[str], limit: int, hidden_action: str
) -> Sequence[Activity]:
    """The newest ``limit`` things people did to the subjects (but ``hidden_action``), newest first."""
    return (
        await s.scalars(
            select(Activity)
            .where(Activity.subject.in_(list(subjects)), Activity.action != hidden_action)
            .order_by(Activity.id.desc())
            .limit(limit)
        )
    ).all()


async def postings_in_states(s: AsyncSession, integration_id: int, states: Iterable[str]) -> int:
    """How many postings of the integration are in one of ``states``."""
    found = await s.scalar(
        select(func.count())
        .select_from(Posting)
        .where(Posting.integration_id == integration_id, Posting.state.in_(list(states)))
    )
    return int(found or 0)


async def posting_of_document(
    s: AsyncSession, source: str, kind: str, external_id: str, posting_kind: str
) -> Posting | None:
    """The ``posting_kind`` posting of the source's document (``None``: none)."""
    found = await s.scalars(
        select(Posting)
        .join(Document, Document.id == Posting.document_id)
        .where(
            Document.source == source,
            Document.kind == kind,
            Document.external_id == external_id,
            Posting.kind == posting_kind,
        )
    )
    return found.first()


async def holds_documents(s: AsyncSession) -> bool:
    """Whether any document has been received."""
    return bool(await s.scalar(select(func.count()).select_from(Document)))
