"""What a Slack message says, as plain data loaded from the database.

The notifier loads these (``bot/postings/notices.py``); the pure builders in
``bot/postings/messages.py`` and ``bot/postings/log_blocks.py`` turn them into Block Kit JSON.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from storage.states import PostingState
from sync.kinds import KINDS
from sync.kinds.base import money


class Status(StrEnum):
    """What a message says about its subject, in the finance team's terms."""

    FAILED = "failed"  # needs a person
    BOOKED = "booked"  # booked in the ledger: cannot change, cannot book again
    QUEUED = "queued"  # waiting for its turn (after a resync, or a change)
    SENDING = "sending"  # the worker is talking to the ledger right now
    RETRYING = "retrying"  # the ledger was unreachable; tries again on its own
    WAITING = "waiting"  # held back (auto-transfer off, before history start)
    SYNCED = "synced"
    IGNORED = "ignored"
    WITHDRAWN = "withdrawn"  # the document no longer needs it; nothing of it is in the ledger
    RESOLVED = "resolved"  # an error group none of whose postings needs anything


#: statuses after which a new failure deserves a new message, not an edit far up the channel
SETTLED = frozenset({Status.SYNCED, Status.IGNORED, Status.WITHDRAWN, Status.RESOLVED})


@dataclass(frozen=True)
class DocumentFacts:
    """A document as the source sent it."""

    id: int
    source: str
    kind: str
    external_id: str
    data: Mapping[str, Any]

    @property
    def is_paid_bill(self) -> bool:
        """A document with a payment (a paid bill): only then may its payment posting be resynced."""
        kind = KINDS.get(self.kind)
        return kind is not None and kind.has_payment(self.data)

    @property
    def key(self) -> str:
        return f"{self.source}/{self.kind}/{self.external_id}"


@dataclass(frozen=True)
class PostingFacts:
    """One posting of a document, as it stands."""

    id: int
    kind: str
    state: str
    integration: str
    attempts: int = 0
    period: str | None = None
    external_ref: str | None = None
    last_error: str | None = None
    queued_actor: str | None = None
    queued_trigger: str | None = None
    next_attempt_at: datetime | None = None
    error_group_id: int | None = None
    #: the failure's code: whose words ``last_error`` is (``sync.errors.said_by_ledgerops``)
    error_code: str | None = None
    #: the last attempt gave up retrying (the ledger did not answer, time after time)
    gave_up: bool = False
    #: what ran the last attempt (``manual`` for a person's resync), and who asked for it
    last_trigger: str | None = None
    last_actor: str | None = None
    #: when it was queued (a person's resync: when they asked)
    queued_at: datetime | None = None
    #: a booked voucher's change that was not sent: (field, before, after)
    unsent_change: tuple[tuple[str, str, str], ...] = ()
    #: who marked that change (or a booked withdrawal) handled in the ledger, and when
    handled_by: str | None = None
    handled_at: datetime | None = None
    #: queued but held back until another posting of the document is in the ledger
    waiting_for: str | None = None

    @property
    def needs_person(self) -> bool:
        """Booked with a change (or a withdrawal) not sent that nobody has marked handled yet."""
        return self.state == PostingState.BOOKED and bool(self.last_error)

    @property
    def status(self) -> Status:
        """The posting's state as a message status."""
        if self.waiting_for and self.state in (PostingState.PENDING, PostingState.RETRYING):
            return Status.WAITING
        return {
            PostingState.FAILED: Status.FAILED,
            PostingState.BOOKED: Status.BOOKED,
            PostingState.PENDING: Status.QUEUED,
            PostingState.IN_FLIGHT: Status.SENDING,
            PostingState.RETRYING: Status.RETRYING,
            PostingState.WAITING: Status.WAITING,
            PostingState.SYNCED: Status.SYNCED,
            PostingState.IGNORED: Status.IGNORED,
            PostingState.WITHDRAWN: Status.WITHDRAWN,
        }.get(PostingState(self.state), Status.QUEUED)


@dataclass(frozen=True)
class PostingNotice:
    """Everything the message about one posting shows."""

    document: DocumentFacts
    posting: PostingFacts
    #: the person whose resync made it sync (or ``None`` when it synced on its own)
    fixed_by: str | None = None
    #: when the last attempt finished
    last_attempt_at: datetime | None = None
    #: the document's other postings' states by kind (the payment posting may be booked)
    sibling_states: Mapping[str, str] = field(default_factory=dict)
    #: the document's postings that wait for this one: (kind, state)
    dependents: tuple[tuple[str, str], ...] = ()

    @property
    def status(self) -> Status:
        return self.posting.status


@dataclass(frozen=True)
class GroupMember:
    """One document in an error group, for the sample list."""

    document: DocumentFacts
    posting_kind: str


@dataclass(frozen=True)
class GroupTry:
    """A person's latest try of the group's postings, and what the ledger said."""

    at: datetime
    actor: str
    outcome: str
    message: str | None


@dataclass(frozen=True)
class GroupNotice:
    """Everything the message about one error group shows."""

    group_id: int
    integration: str
    error_code: str
    title: str
    first_seen: datetime
    last_seen: datetime
    #: postings of the group by posting state
    counts: Mapping[str, int]
    #: a few of the documents that still fail
    sample: tuple[GroupMember, ...] = ()
    #: document kinds in the group (for "37 bills")
    document_kinds: frozenset[str] = frozenset({"bill"})
    requested_by: tuple[str, ...] = ()
    fixed_by: tuple[str, ...] = ()
    #: a person's latest resync of its postings (``Resync all``, a bulk resync, one click)
    last_try: GroupTry | None = None

    @property
    def failing(self) -> int:
        return self.counts.get(PostingState.FAILED, 0)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def in_progress(self) -> int:
        return sum(
            self.counts.get(s, 0)
            for s in (
                PostingState.PENDING,
                PostingState.IN_FLIGHT,
                PostingState.RETRYING,
                PostingState.WAITING,
            )
        )

    @property
    def status(self) -> Status:
        if self.failing:
            return Status.FAILED
        if self.in_progress:
            return Status.QUEUED
        return Status.RESOLVED


@dataclass(frozen=True)
class LogEntry:
    """One line of a document's integration log: an attempt, or a person's action."""

    at: datetime
    outcome: str
    posting: str | None = None  # "invoice", "journal:2026-05"
    trigger: str | None = None
    actor: str | None = None
    operation: str | None = None
    message: str | None = None
    external_ref: str | None = None
    #: set for a person's action from ``activity`` (resync, ignore, a refusal)
    action: str | None = None
    #: an attempt's error code (``booked``: a change a booked voucher did not get)
    error_code: str | None = None
    #: sort tie-breaker: attempts and activity rows interleave by time, then id
    order: int = 0


# -- reading a document's data -------------------------------------------------------------


def document_title(doc: DocumentFacts) -> str:
    """A short name a finance person recognises: ``bill INV-1 from Kontorland A/S``."""
    kind = KINDS.get(doc.kind)
    if kind is not None:
        return kind.title(doc.data, doc.external_id)
    # the kinds the engine does not post yet (their modules come with their issues)
    d = doc.data
    if doc.kind == "order":
        return f"order {d.get('number') or doc.external_id}"
    if doc.kind == "relation":
        return f"{d.get('type') or 'relation'} {d.get('name') or doc.external_id}"
    return f"{doc.kind.replace('_', ' ')} {doc.external_id}"


def document_fields(doc: DocumentFacts) -> list[tuple[str, str]]:
    """Label/value pairs describing the document (raw text: the builder escapes)."""
    kind = KINDS.get(doc.kind)
    if kind is not None:
        return kind.fields(doc.data, doc.external_id, doc.key)
    d = doc.data
    amount = d.get("total", d.get("amount"))
    fields = [("Document", doc.key)]
    if amount is not None:
        fields.append(("Amount", money(amount, d.get("currency")) or "—"))
    return fields


def posting_label(kind: str, period: str | None = None) -> str:
    """``invoice posting``, ``payment posting``, ``journal (2026-05)``."""
    name = "journal" if kind == "journal" else f"{kind.replace('_', ' ')} posting"
    return f"{name} ({period})" if period else name


def plural(kinds: frozenset[str], n: int) -> str:
    """``bill``/``bills`` when the group is all bills, else ``document(s)``."""
    noun = next(iter(kinds)).replace("_", " ") if len(kinds) == 1 else "document"
    return noun if n == 1 else f"{noun}s"
