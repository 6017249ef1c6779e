"""Database reads behind every Slack message: current state in, :mod:`bot.facts` out.

Messages are rebuilt from these after every change, never patched, so what a
message says is always what the database says now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.facts import (
    DocumentFacts,
    GroupMember,
    GroupNotice,
    LogEntry,
    PostingFacts,
    PostingNotice,
)
from storage.models import Activity, Attempt, Document, ErrorGroup, Integration, Posting
from storage.states import Outcome, PostingState

QUEUED = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING, PostingState.WAITING)
#: log rows read for Show log (a bill has a handful; a pathological one stays bounded)
LOG_LIMIT = 500


def document_facts(doc: Document) -> DocumentFacts:
    return DocumentFacts(
        id=doc.id, source=doc.source, kind=doc.kind, external_id=doc.external_id, data=dict(doc.data or {})
    )


def posting_facts(p: Posting, integration: str) -> PostingFacts:
    return PostingFacts(
        id=p.id,
        kind=p.kind,
        state=p.state,
        integration=integration,
        attempts=p.attempts,
        period=p.period,
        external_ref=p.external_ref,
        last_error=p.last_error,
        queued_actor=p.queued_actor,
        queued_trigger=p.queued_trigger,
        next_attempt_at=p.next_attempt_at,
        error_group_id=p.error_group_id,
    )


async def load_posting_notice(s: AsyncSession, posting_id: int) -> PostingNotice | None:
    """The facts of one posting's message, or ``None`` when the posting is gone."""
    row = (
        await s.execute(
            select(Posting, Document, Integration.name)
            .join(Document, Document.id == Posting.document_id)
            .join(Integration, Integration.id == Posting.integration_id)
            .where(Posting.id == posting_id)
        )
    ).one_or_none()
    if row is None:
        return None
    p, doc, integration = row
    siblings = dict(
        (
            await s.execute(
                select(Posting.kind, Posting.state).where(
                    Posting.document_id == doc.id, Posting.integration_id == p.integration_id
                )
            )
        ).all()
    )
    last = (
        await s.execute(
            select(Attempt.finished_at, Attempt.outcome, Attempt.actor)
            .where(Attempt.posting_id == p.id)
            .order_by(Attempt.id.desc())
            .limit(1)
        )
    ).one_or_none()
    fixed_by = None
    if p.state == PostingState.SYNCED and last is not None and last.outcome == Outcome.SYNCED:
        fixed_by = last.actor
    return PostingNotice(
        document=document_facts(doc),
        posting=posting_facts(p, integration),
        fixed_by=fixed_by,
        last_attempt_at=last.finished_at if last else None,
        sibling_states=siblings,
    )


async def load_group_notice(s: AsyncSession, group_id: int, sample: int = 10) -> GroupNotice | None:
    """The facts of an error group's message: counts by state, a sample, who acted."""
    row = (
        await s.execute(
            select(ErrorGroup, Integration.name)
            .join(Integration, Integration.id == ErrorGroup.integration_id)
            .where(ErrorGroup.id == group_id)
        )
    ).one_or_none()
    if row is None:
        return None
    g, integration = row
    counts = dict(
        (
            await s.execute(
                select(Posting.state, func.count())
                .where(Posting.error_group_id == group_id)
                .group_by(Posting.state)
            )
        ).all()
    )
    kinds = frozenset(
        (
            await s.scalars(
                select(Document.kind)
                .distinct()
                .join(Posting, Posting.document_id == Document.id)
                .where(Posting.error_group_id == group_id)
            )
        ).all()
    ) or frozenset({"document"})
    members = (
        await s.execute(
            select(Document, Posting.kind)
            .join(Posting, Posting.document_id == Document.id)
            .where(Posting.error_group_id == group_id, Posting.state == PostingState.FAILED)
            .order_by(Posting.id)
            .limit(sample)
        )
    ).all()
    requested = (
        await s.scalars(
            select(Posting.queued_actor)
            .distinct()
            .where(
                Posting.error_group_id == group_id,
                Posting.state.in_(QUEUED),
                Posting.queued_actor.is_not(None),
            )
            .limit(10)
        )
    ).all()
    fixed = (
        await s.scalars(
            select(Attempt.actor)
            .distinct()
            .join(Posting, Posting.id == Attempt.posting_id)
            .where(
                Posting.error_group_id == group_id,
                Attempt.outcome == Outcome.SYNCED,
                Attempt.actor.is_not(None),
                Attempt.started_at >= g.first_seen,
            )
            .limit(10)
        )
    ).all()
    return GroupNotice(
        group_id=g.id,
        integration=integration,
        error_code=g.error_code,
        title=g.title,
        first_seen=g.first_seen,
        last_seen=g.last_seen,
        counts=counts,
        sample=tuple(GroupMember(document_facts(d), k) for d, k in members),
        document_kinds=kinds,
        requested_by=tuple(sorted(requested)),
        fixed_by=tuple(sorted(fixed)),
    )


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


def attempt_entry(a: Attempt, p_kind: str, period: str | None) -> LogEntry:
    return LogEntry(
        at=a.started_at,
        outcome=a.outcome,
        posting=f"{p_kind}:{period}" if period else p_kind,
        trigger=a.trigger,
        actor=a.actor,
        operation=a.operation,
        message=a.message,
        external_ref=a.external_ref,
        order=a.id,
    )


async def attempts_after(
    s: AsyncSession, posting_id: int, after_id: int | None
) -> list[tuple[int, LogEntry]]:
    """Attempts of a posting newer than ``after_id`` (for the message's thread), oldest first."""
    p = await s.get(Posting, posting_id)
    if p is None:
        return []
    stmt = select(Attempt).where(Attempt.posting_id == posting_id).order_by(Attempt.id)
    if after_id is not None:
        stmt = stmt.where(Attempt.id > after_id)
    return [(a.id, attempt_entry(a, p.kind, p.period)) for a in (await s.scalars(stmt)).all()]


async def last_attempt_id(s: AsyncSession, posting_id: int) -> int | None:
    return await s.scalar(select(func.max(Attempt.id)).where(Attempt.posting_id == posting_id))


async def load_log(
    s: AsyncSession, document_id: int, integration_id: int | None
) -> tuple[DocumentFacts, str, int, list[LogEntry]] | None:
    """A document's integration log: attempts and people's actions, newest first."""
    doc = await s.get(Document, document_id)
    if doc is None:
        return None
    integration_id = integration_id or doc.integration_id
    integration = await s.scalar(select(Integration.name).where(Integration.id == integration_id))
    postings = list(
        (
            await s.scalars(
                select(Posting).where(Posting.document_id == doc.id, Posting.integration_id == integration_id)
            )
        ).all()
    )
    by_id = {p.id: p for p in postings}
    attempts = (
        await s.scalars(
            select(Attempt)
            .where(Attempt.posting_id.in_(list(by_id) or [0]))
            .order_by(Attempt.id.desc())
            .limit(LOG_LIMIT)
        )
    ).all()
    entries = [attempt_entry(a, by_id[a.posting_id].kind, by_id[a.posting_id].period) for a in attempts]
    subjects = [f"document:{doc.id}", *(f"posting:{pid}" for pid in by_id)]
    acts = (
        await s.scalars(
            select(Activity)
            .where(or_(Activity.subject.in_(subjects)), Activity.action != "show_log")
            .order_by(Activity.id.desc())
            .limit(LOG_LIMIT)
        )
    ).all()
    entries.extend(_activity_entry(a) for a in acts)
    entries.sort(key=lambda e: (e.at, e.action is None, e.order), reverse=True)
    return document_facts(doc), integration or "?", integration_id, entries


def _activity_entry(a: Activity) -> LogEntry:
    detail = a.detail or {}
    messages: Sequence[str] = detail.get("messages") or ([detail["message"]] if detail.get("message") else [])
    return LogEntry(
        at=a.at,
        outcome=a.outcome or "ok",
        actor=a.actor,
        action=a.action,
        message=" ".join(str(m) for m in messages) or detail.get("reason"),
        order=a.id,
    )
