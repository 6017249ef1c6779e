"""Tables (DESIGN.md section 3) as SQLAlchemy 2 typed models.

Money is ``Numeric`` read back as ``Decimal``; times are stored as UTC and read
back timezone-aware on every dialect (SQLite keeps no zone, so a type decorator
adds it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.states import MessageState, Operation, Outcome, PostingState, Trigger


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite stores text; keep it naive-UTC so string order equals time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def state_of(enum: type[StrEnum], length: int) -> Enum:
    """A column holding one of ``enum``'s values: the same ``VARCHAR(length)`` as before, no
    CHECK constraint (so no migration), read back as the enum member."""
    return Enum(
        enum,
        native_enum=False,
        create_constraint=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
    )


JSONType = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrement needs INTEGER


class Base(DeclarativeBase):
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        datetime: UTCDateTime(),
        date: Date(),
        Decimal: Numeric(18, 2),
        dict[str, Any]: JSONType,
    }


def table_of(model: type[Base]) -> Table:
    """The table ``model`` is mapped to, for Core statements.

    SQLAlchemy types ``__table__`` as any ``FromClause`` (a model may map a join); every
    model here maps one :class:`Table`, and the check says so to the type checker.
    """
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to one table")
    return table


class Integration(Base):
    """One link from a source company to one administration in one accounting system."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    auto_transfer: Mapped[bool] = mapped_column(Boolean, default=True)
    history_start: Mapped[date | None]
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    monthly_quota: Mapped[int] = mapped_column(Integer, default=0)
    quota_used: Mapped[int] = mapped_column(Integer, default=0)
    quota_month: Mapped[str | None] = mapped_column(String(7))
    created_at: Mapped[datetime]


class Document(Base):
    """What a source sent, latest version wins."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("source", "kind", "external_id", name="uq_documents_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(BigInteger)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    status: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]]
    doc_date: Mapped[date | None]
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Posting(Base):
    """One record a document needs in the accounting system."""

    __tablename__ = "postings"
    __table_args__ = (
        UniqueConstraint("document_id", "integration_id", "slot", name="uq_postings_key"),
        Index("ix_postings_state_due", "state", "next_attempt_at"),
        Index("ix_postings_company_queue", "company_key", "state", "queued_at", "id"),
        Index("ix_postings_integration_state", "integration_id", "state"),
        Index("ix_postings_error_group", "error_group_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    kind: Mapped[str] = mapped_column(String(20))
    # kind, plus the period for journals: a payroll run books one journal per period
    slot: Mapped[str] = mapped_column(String(40))
    period: Mapped[str | None] = mapped_column(String(7))
    state: Mapped[PostingState] = mapped_column(state_of(PostingState, 20))
    action: Mapped[str | None] = mapped_column(String(10))
    # ``None``: the document no longer needs this posting (withdraw it from the ledger)
    desired_hash: Mapped[str | None] = mapped_column(String(64))
    synced_hash: Mapped[str | None] = mapped_column(String(64))
    # what the last write carried, kept when its outcome was unknown
    sent_hash: Mapped[str | None] = mapped_column(String(64))
    external_ref: Mapped[str | None] = mapped_column(String(128))
    erp_status: Mapped[str | None] = mapped_column(String(10))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    company_key: Mapped[str] = mapped_column(String(80))
    queued_at: Mapped[datetime | None]
    queued_trigger: Mapped[Trigger | None] = mapped_column(state_of(Trigger, 10))
    queued_actor: Mapped[str | None] = mapped_column(String(40))
    # A create may have reached the ledger without us hearing back: look first.
    lookup_first: Mapped[bool] = mapped_column(Boolean, default=False)
    # A person asked for it: send even when nothing changed since the last sync.
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_expires_at: Mapped[datetime | None]
    # the drain that claimed it: only that drain may record its outcome (fencing)
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    # the source value a missing mapping is for (``error_code`` ``unmapped_<kind>`` names the kind)
    error_cause: Mapped[str | None] = mapped_column(String(255))
    error_group_id: Mapped[int | None] = mapped_column(ForeignKey("error_groups.id"))
    updated_at: Mapped[datetime]
    # the voucher's fields as last written ({"Amount": "742.50", "Account": "2800", ...})
    synced_fields: Mapped[dict[str, Any] | None]
    # a booked voucher's change that was not sent: [[field, before, after], ...]
    unsent_change: Mapped[list[Any] | None] = mapped_column(JSONType)
    # who marked a booked posting's unsent change (or withdrawal) handled in the ledger, and when
    handled_by: Mapped[str | None] = mapped_column(String(40))
    handled_at: Mapped[datetime | None]
    # the slot of the posting of the same document this one waits for (a payment: "invoice")
    depends_on: Mapped[str | None] = mapped_column(String(40))


class Attempt(Base):
    """One try to bring a posting in line. Append-only: the integration log."""

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_posting", "posting_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    trigger: Mapped[Trigger] = mapped_column(state_of(Trigger, 10))
    actor: Mapped[str | None] = mapped_column(String(40))
    operation: Mapped[Operation] = mapped_column(state_of(Operation, 10))
    outcome: Mapped[Outcome] = mapped_column(state_of(Outcome, 10))
    error_code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    external_ref: Mapped[str | None] = mapped_column(String(128))
    #: a transient failure the worker gave up on (outcome ``failed``): the ledger did not answer
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ErrorGroup(Base):
    """Failures that share a fingerprint: shown once in Slack, fixed together."""

    __tablename__ = "error_groups"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    error_code: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    repetitions: Mapped[int] = mapped_column(Integer, default=1)
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    muted_until: Mapped[datetime | None]


class Lease(Base):
    """One holder per company at a time, across processes."""

    __tablename__ = "leases"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str] = mapped_column(String(80))
    expires_at: Mapped[datetime]


class Activity(Base):
    """Who pressed what, and when."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_subject", "subject", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor: Mapped[str | None] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime]
    outcome: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class SlackMessage(Base):
    """The outbox: one Slack message per subject and channel, rebuilt from the database.

    ``subject_type`` is ``posting``, ``error_group``, ``outage`` or ``digest``;
    ``state`` is a :class:`storage.states.MessageState`.
    """

    __tablename__ = "slack_messages"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "channel", name="uq_slack_messages_subject"),
        Index("ix_slack_messages_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(40))
    ts: Mapped[str | None] = mapped_column(String(40))
    thread_ts: Mapped[str | None] = mapped_column(String(40))
    rendered_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[MessageState] = mapped_column(state_of(MessageState, 20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # attempts already copied into the message's thread (the log grows; we post only what is new)
    threaded_attempt_id: Mapped[int | None] = mapped_column(BigInteger)
    # bumped whenever the subject changes; a send only settles the row if nothing newer came in
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # what the last sent message said about its subject (failed, queued, synced, resolved ...):
    # a subject that needs a person again after a settled message gets a new message
    subject_status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Credential(Base):
    """A secret a connector must keep between runs (Exact's rotating refresh token).

    ``value`` is encrypted with the key in ``LEDGEROPS_SECRET_KEY``; nothing else
    secret is ever stored.
    """

    __tablename__ = "credentials"

    integration: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    updated_at: Mapped[datetime]


class Mapping(Base):
    """A source name -> ledger number set by a person (``/ledger map``); wins over the config."""

    __tablename__ = "mappings"
    __table_args__ = (UniqueConstraint("integration", "what", "source", name="uq_mappings_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    integration: Mapped[str] = mapped_column(String(40))
    what: Mapped[str] = mapped_column(String(20))  # category | department | payment-method
    source: Mapped[str] = mapped_column(String(255))
    number: Mapped[int] = mapped_column(BigInteger)
    set_by: Mapped[str | None] = mapped_column(String(40))
    set_at: Mapped[datetime]


class Outage(Base):
    """What the outage watch knows about one integration's ledger (one row per integration).

    The watch folds the attempt log into this row (``checked_attempt_id`` marks how
    far it has read), so any replica can carry on where another stopped.
    ``since`` set and ``recovered_at`` empty: an outage is announced and ongoing.
    """

    __tablename__ = "outages"

    integration_id: Mapped[int] = mapped_column(Id, ForeignKey("integrations.id"), primary_key=True)
    checked_attempt_id: Mapped[int] = mapped_column(BigInteger, default=0)
    # first transient failure after the ledger last answered; ``None``: not failing
    failing_since: Mapped[datetime | None]
    # when the ledger last answered an attempt (synced, booked, refused with a reason)
    last_answer_at: Mapped[datetime | None]
    # the latest transient failure
    last_seen: Mapped[datetime | None]
    # the announced outage: since when, and when it ended
    since: Mapped[datetime | None]
    recovered_at: Mapped[datetime | None]
    waiting: Mapped[int] = mapped_column(Integer, default=0)
    retry_seconds: Mapped[int | None] = mapped_column(Integer)
    next_try_at: Mapped[datetime | None]
    error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class JobRun(Base):
    """A scheduled job that must happen once across replicas claims its row first.

    ``(job, run_key)`` is unique: the digest of 2026-11-22 is ``("digest", "2026-11-22")``.
    ``detail`` keeps what the run found, so its Slack message is rebuilt the same way.
    """

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "run_key", name="uq_job_runs_key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    run_key: Mapped[str] = mapped_column(String(40))
    holder: Mapped[str] = mapped_column(String(80))
    ran_at: Mapped[datetime]
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class BulkPosting(Base):
    """A posting a bulk resync queued (its run is a ``job_runs`` row, job ``bulk_resync``):
    the run's Slack message counts what became of them."""

    __tablename__ = "bulk_postings"
    __table_args__ = (Index("ix_bulk_postings_posting", "posting_id", "run_id"),)

    run_id: Mapped[int] = mapped_column(ForeignKey("job_runs.id"), primary_key=True, autoincrement=False)
    posting_id: Mapped[int] = mapped_column(ForeignKey("postings.id"), primary_key=True, autoincrement=False)
