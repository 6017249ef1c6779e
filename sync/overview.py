"""Read models for people: status per integration, the queue per company, what needs attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Document, ErrorGroup, Integration, Lease, Posting
from storage.queries.postings import BACKOFF_HOLDER
from storage.states import PostingState


@dataclass
class IntegrationStatus:
    """Counts for one integration."""

    name: str
    kind: str
    paused: bool
    synced_today: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    open_groups: int = 0

    def count(self, state: PostingState) -> int:
        return self.counts.get(state.value, 0)


async def integration_status(s: AsyncSession, now: datetime) -> list[IntegrationStatus]:
    """Per integration: postings by state, synced today, open error groups."""
    rows = {
        i.name: IntegrationStatus(i.name, i.kind, i.paused)
        for i in (await s.scalars(select(Integration).order_by(Integration.name))).all()
    }
    by_state = await s.execute(
        select(Integration.name, Posting.state, func.count())
        .join(Posting, Posting.integration_id == Integration.id)
        .group_by(Integration.name, Posting.state)
    )
    for name, state, n in by_state.all():
        rows[name].counts[state] = int(n)
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    today = await s.execute(
        select(Integration.name, func.count())
        .join(Posting, Posting.integration_id == Integration.id)
        .where(Posting.state == PostingState.SYNCED, Posting.updated_at >= midnight)
        .group_by(Integration.name)
    )
    for name, n in today.all():
        rows[name].synced_today = int(n)
    groups = await s.execute(
        select(Integration.name, func.count())
        .join(ErrorGroup, ErrorGroup.integration_id == Integration.id)
        .where(ErrorGroup.open.is_(True))
        .group_by(Integration.name)
    )
    for name, n in groups.all():
        rows[name].open_groups = int(n)
    return list(rows.values())


@dataclass
class CompanyQueue:
    """What waits for one company (administration)."""

    company: str
    queued: int
    in_flight: int
    retrying: int
    queued_since: datetime | None
    next_retry_at: datetime | None
    resting_until: datetime | None  # the ledger asked us to wait (backoff after a failure)


async def company_queues(s: AsyncSession, now: datetime) -> list[CompanyQueue]:
    """Queued, in-flight and retrying postings per company, and since when."""
    rows = await s.execute(
        select(
            Posting.company_key,
            Posting.state,
            func.count(),
            func.min(Posting.queued_at),
            func.min(Posting.next_attempt_at),
        )
        .where(Posting.state.in_([PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING]))
        .group_by(Posting.company_key, Posting.state)
    )
    out: dict[str, CompanyQueue] = {}
    for company, state, n, since, next_at in rows.all():
        q = out.setdefault(company, CompanyQueue(company, 0, 0, 0, None, None, None))
        if state == PostingState.RETRYING:
            q.retrying, q.next_retry_at = int(n), next_at
        else:
            if state == PostingState.PENDING:
                q.queued = int(n)
            else:
                q.in_flight = int(n)
            if since is not None and (q.queued_since is None or since < q.queued_since):
                q.queued_since = since
    rests = await s.execute(
        select(Lease.key, Lease.expires_at).where(Lease.holder == BACKOFF_HOLDER, Lease.expires_at > now)
    )
    for company, until in rests.all():
        if company in out:
            out[company].resting_until = until
    return sorted(out.values(), key=lambda q: (q.queued_since is None, q.queued_since, q.company))


@dataclass
class AttentionGroup:
    """An open error group: what failed, how often, and some documents it concerns."""

    group_id: int
    integration: str
    code: str
    title: str
    failed: int
    first_seen: datetime
    last_seen: datetime
    muted_until: datetime | None
    documents: list[tuple[str, str, str]]


async def needs_attention(s: AsyncSession, *, limit: int = 20, sample: int = 5) -> list[AttentionGroup]:
    """Open error groups with failed postings, largest first."""
    counts = await s.execute(
        select(ErrorGroup, Integration.name, func.count(Posting.id))
        .join(Integration, Integration.id == ErrorGroup.integration_id)
        .join(Posting, Posting.error_group_id == ErrorGroup.id)
        .where(ErrorGroup.open.is_(True), Posting.state == PostingState.FAILED)
        .group_by(ErrorGroup.id, Integration.name)
        .order_by(func.count(Posting.id).desc(), ErrorGroup.id)
        .limit(limit)
    )
    out: list[AttentionGroup] = []
    for group, name, n in counts.all():
        docs = (
            await s.execute(
                select(Document.source, Document.kind, Document.external_id)
                .join(Posting, Posting.document_id == Document.id)
                .where(Posting.error_group_id == group.id, Posting.state == PostingState.FAILED)
                .order_by(Posting.id)
                .limit(sample)
            )
        ).all()
        out.append(
            AttentionGroup(
                group.id,
                name,
                group.error_code,
                group.title,
                int(n),
                group.first_seen,
                group.last_seen,
                group.muted_until,
                [tuple(d) for d in docs],
            )
        )  # type: ignore[misc]
    return out


async def find_documents(s: AsyncSession, ref: str, limit: int = 5) -> list[Document]:
    """Documents a person means by ``ref``: ``source/kind/id``, ``kind:id`` or a bare id."""
    stmt = select(Document)
    if ref.count("/") == 2:
        source, kind, ext = ref.split("/")
        stmt = stmt.where(Document.source == source, Document.kind == kind, Document.external_id == ext)
    elif ":" in ref:
        kind, _, ext = ref.partition(":")
        stmt = stmt.where(Document.kind == kind, Document.external_id == ext)
    else:
        stmt = stmt.where(Document.external_id == ref)
    return list((await s.scalars(stmt.order_by(Document.id).limit(limit))).all())
