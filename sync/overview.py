"""Read models for people: status per integration, the queue per company, what needs attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

from storage.db import Session
from storage.models import Document
from storage.queries import figures, overview
from storage.states import PostingState
from sync.kinds import KINDS
from sync.voucher_change import change_lines


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


async def integration_status(s: Session, now: datetime) -> list[IntegrationStatus]:
    """Per integration: postings by state, synced today, open error groups."""
    rows = {
        i.name: IntegrationStatus(i.name, i.kind, i.paused) for i in await figures.integrations_by_name(s)
    }
    for (name, state), n in (await figures.postings_by_integration_and_state(s)).items():
        rows[name].counts[state] = n
    midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
    for name, n in (await overview.synced_since_by_integration(s, midnight)).items():
        rows[name].synced_today = n
    for name, n in (await overview.open_groups_by_integration(s)).items():
        rows[name].open_groups = n
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


async def company_queues(s: Session, now: datetime) -> list[CompanyQueue]:
    """Queued, in-flight and retrying postings per company, and since when."""
    rows = await overview.queue_by_company_and_state(
        s, [PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING]
    )
    out: dict[str, CompanyQueue] = {}
    for company, state, n, since, next_at in rows:
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
    for company, until in (await overview.companies_resting(s, now)).items():
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
    #: ``(source, kind, what a person sees)``: ``Kontorland A/S · INV-1005 · 742.50 DKK``
    documents: list[tuple[str, str, str]]


async def needs_attention(s: Session, *, limit: int = 20, sample: int = 5) -> list[AttentionGroup]:
    """Open error groups with failed postings, largest first."""
    out: list[AttentionGroup] = []
    for group, name, n in await overview.open_groups_with_failures(s, limit):
        docs = [
            (src, kind, _seen_as(kind, data, ext))
            for src, kind, ext, data in await overview.documents_failing_in_group(s, group.id, sample)
        ]
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
                docs,
            )
        )
    return out


def _seen_as(kind: str, data: dict[str, object], external_id: str) -> str:
    """A document as its messages name it (supplier, number, amount), not ``bill B-1005``."""
    known = KINDS.get(kind)
    return known.summary(data, external_id) if known else f"{kind.replace('_', ' ')} {external_id}"


@dataclass
class BookedNotSent:
    """A booked posting a person must correct in the ledger: booked, change not sent."""

    posting_id: int
    document_id: int
    integration: str
    #: ``Kontorland A/S · INV-1 · 842.50 DKK`` (the kind's own summary)
    summary: str
    posting_kind: str
    voucher: str
    #: ``Amount 742.50 -> 842.50`` per field; empty for a withdrawal the voucher did not get
    change: list[str]
    reason: str


async def booked_not_sent(s: Session, *, limit: int = 20) -> list[BookedNotSent]:
    """Booked postings whose change was not sent and that nobody marked handled yet."""
    out = []
    for p, doc, name in await overview.booked_not_sent(s, limit):
        kind = KINDS.get(doc.kind)
        summary = kind.summary(doc.data, doc.external_id) if kind else f"{doc.kind} {doc.external_id}"
        change = change_lines([list(c) for c in p.unsent_change or []])
        out.append(
            BookedNotSent(
                p.id, doc.id, name, summary, p.kind, p.external_ref or "?", change, p.last_error or ""
            )
        )
    return out


async def find_documents(s: Session, ref: str, limit: int = 5) -> list[Document]:
    """Documents a person means by ``ref``: ``source/kind/id``, ``kind:id`` or a bare id."""
    if ref.count("/") == 2:
        source, kind, ext = ref.split("/")
        return await overview.documents_matching(s, ext, kind=kind, source=source, limit=limit)
    if ":" in ref:
        kind, _, ext = ref.partition(":")
        return await overview.documents_matching(s, ext, kind=kind, limit=limit)
    return await overview.documents_matching(s, ref, limit=limit)
