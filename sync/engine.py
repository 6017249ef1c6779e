"""Use cases: ingest, resync, bulk resync, ignore.

Every use case is one database transaction that moves state atomically; the
worker does the talking to ledgers. A person's action moves a posting's state
*before* any ledger call, with a guarded update, so a double click (or two
people clicking) queues it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector
from storage.db import Database, lost_race
from storage.models import Activity, Attempt, Document, Integration, Posting
from storage.queries.groups import close_settled_groups
from storage.queries.postings import clear_backoff
from storage.states import Operation, Outcome, PostingKind, PostingState, Trigger
from sync.bulk import requeue_chunk
from sync.changes import AttemptListener, Change, ChangeFeed
from sync.config import IntegrationConfig, WorkerConfig
from sync.documents import DATA_MODELS, FieldError, ValidEvent, document_date
from sync.mappings import MappingBook
from sync.planner import SUPPORTED_KINDS, Eligibility, PlannedPosting, UnsupportedDocument, plan
from sync.policy import RetryPolicy
from sync.vouchers import MappingLookup, idempotency_key
from sync.withdrawal import withdraw

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ConnectorFactory = Callable[[IntegrationConfig], Connector]


def utcnow() -> datetime:
    return datetime.now(UTC)


#: states a person's resync may move to pending (not in flight, not booked, not queued)
RESYNCABLE = (
    PostingState.FAILED,
    PostingState.RETRYING,
    PostingState.SYNCED,
    PostingState.WAITING,
    PostingState.IGNORED,
)
IGNORABLE = (PostingState.FAILED, PostingState.RETRYING, PostingState.PENDING, PostingState.WAITING)
WAIT_AUTO_OFF = "auto_transfer_off"
WAIT_HISTORY = "before_history_start"
#: a batch that keeps meeting concurrent writes of the same documents gives up (a 500) after this
INGEST_TRIES = 5


class IngestRejected(Exception):
    """The request cannot be stored as a whole; nothing was written."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


class DocumentNotFound(LookupError):
    """No document with that key."""


class UnknownIntegration(LookupError):
    """No integration of that name in the config."""

    def __init__(self, name: str, known: list[str]):
        super().__init__(f"No integration named '{name}'. Configured: {', '.join(known) or 'none'}.")
        self.name = name


@dataclass
class IngestResult:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ActionOutcome:
    """What a person's action did to one posting, in their words."""

    posting_id: int | None
    kind: str
    ok: bool
    message: str


@dataclass(frozen=True)
class BulkFilter:
    """Which documents a bulk resync touches."""

    integration: str | None = None
    states: tuple[str, ...] = (PostingState.FAILED,)
    since: date | None = None
    until: date | None = None
    error_group_id: int | None = None
    document_ids: tuple[int, ...] | None = None


@dataclass
class BulkResult:
    documents: int = 0
    queued: int = 0
    refused: int = 0


def _wait_code(reason: str | None) -> str | None:
    if reason is None:
        return None
    return WAIT_HISTORY if "history" in reason else WAIT_AUTO_OFF


class Engine:
    """The sync engine for one database and one set of integrations."""

    def __init__(
        self,
        db: Database,
        integrations: Sequence[IntegrationConfig],
        connectors: ConnectorFactory,
        *,
        policy: RetryPolicy | None = None,
        worker: WorkerConfig | None = None,
        clock: Clock = utcnow,
        feed: ChangeFeed | None = None,
    ):
        self.db = db
        self.integrations = {cfg.name: cfg for cfg in integrations}
        self._connector_factory = connectors
        self._connectors: dict[str, Connector] = {}
        self.policy = policy or RetryPolicy()
        self.worker_config = worker or WorkerConfig()
        self.clock = clock
        self.feed = feed or ChangeFeed()
        self.integration_ids: dict[str, int] = {}
        self._wakers: list[Callable[[], None]] = []
        self.mapping_book = MappingBook(db, self.integrations)
        #: called after every attempt (metrics); must not raise or block
        self.attempt_listeners: list[AttemptListener] = []

    # -- wiring ---------------------------------------------------------------------------
    async def setup(self) -> None:
        """Make the integrations table match the config; release what auto-transfer now allows."""
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            rows = {r.name: r for r in (await s.scalars(select(Integration))).all()}
            for cfg in self.integrations.values():
                row = rows.get(cfg.name)
                if row is None:
                    row = Integration(
                        name=cfg.name, kind=cfg.kind, created_at=now, paused=False, quota_used=0
                    )
                    s.add(row)
                row.kind = cfg.kind
                row.settings = cfg.public_settings()
                row.auto_transfer = cfg.auto_transfer
                row.history_start = cfg.history_start
                row.monthly_quota = cfg.monthly_quota
            await s.flush()
            self.integration_ids = {r.name: r.id for r in (await s.scalars(select(Integration))).all()}
            on = [self.integration_ids[c.name] for c in self.integrations.values() if c.auto_transfer]
            if on:
                await s.execute(
                    update(Posting)
                    .where(
                        Posting.integration_id.in_(on),
                        Posting.state == PostingState.WAITING,
                        Posting.error_code == WAIT_AUTO_OFF,
                    )
                    .values(
                        state=PostingState.PENDING,
                        error_code=None,
                        last_error=None,
                        next_attempt_at=now,
                        queued_at=now,
                        updated_at=now,
                    )
                )
        await self.mapping_book.load()

    def on_work(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` whenever new work is queued (the in-process worker listens)."""
        self._wakers.append(waker)

    def _wake(self) -> None:
        for waker in self._wakers:
            waker()

    def wake(self) -> None:
        """Tell the in-process worker that work may be due (after a sweep)."""
        self._wake()

    def announce(self, posting_ids: list[int]) -> None:
        """Tell listeners that postings changed outside a use case (a sweep gave them up)."""
        self.feed.publish([Change(pid, 0, "", None) for pid in posting_ids])

    def connector(self, integration: str) -> Connector:
        """The (cached) connector of an integration."""
        conn = self._connectors.get(integration)
        if conn is None:
            conn = self._connector_factory(self.integrations[integration])
            self._connectors[integration] = conn
        return conn

    def mappings(self, integration: str) -> MappingLookup:
        """Database mappings first, then the config file's."""
        return self.mapping_book.lookup(integration)

    def rules(self, integration: str) -> Eligibility:
        cfg = self.integrations[integration]
        return Eligibility(cfg.auto_transfer, cfg.history_start, tuple(cfg.ready_statuses))

    async def aclose(self) -> None:
        for conn in self._connectors.values():
            await conn.aclose()
        self._connectors.clear()

    # -- ingest ---------------------------------------------------------------------------
    async def ingest(self, events: Sequence[ValidEvent]) -> IngestResult:
        """Store a validated batch in one transaction and queue what it needs.

        When another replica stores some of the same documents at the same moment, the
        transaction that loses is rolled back whole and run again: it then finds them,
        so it answers exactly as a second send of the batch would (those ids stale).
        """
        unsupported = [
            FieldError(index=i, field="kind", message=str(UnsupportedDocument(ev.event.kind)))
            for i, ev in enumerate(events)
            if ev.event.kind not in SUPPORTED_KINDS
        ]
        if unsupported:
            raise IngestRejected(unsupported)
        for attempt in range(1, INGEST_TRIES + 1):
            try:
                result, changes = await self._store_batch(events)
                break
            except DBAPIError as exc:
                if attempt == INGEST_TRIES or not lost_race(exc):
                    raise
                log.info("ingest met a concurrent write; trying again", extra={"attempt": attempt})
        self.feed.publish(changes)
        self._wake()
        return result

    async def _store_batch(self, events: Sequence[ValidEvent]) -> tuple[IngestResult, list[Change]]:
        now = self.clock()
        result = IngestResult()
        changes: list[Change] = []
        async with self.db.sessions() as s, s.begin():
            await self.db.lock_for_write(s)
            docs = await self._existing_documents(s, events)
            self._check_integrations_unchanged(events, docs)
            doc_ids = [d.id for d in docs.values()]
            postings: dict[int, dict[str, Posting]] = {}
            for chunk in _chunks(doc_ids, 500):
                for p in await s.scalars(select(Posting).where(Posting.document_id.in_(chunk))):
                    postings.setdefault(p.document_id, {})[p.slot] = p
            touched: list[tuple[ValidEvent, Document]] = []
            for ev in events:
                e = ev.event
                doc = docs.get(ev.key)
                if doc is not None and e.version <= doc.version:
                    result.stale.append(e.id)
                    continue
                if doc is None:
                    doc = Document(
                        source=e.source,
                        kind=e.kind,
                        external_id=e.id,
                        integration_id=self.integration_ids[e.integration],
                        received_at=now,
                        status="received",
                        version=e.version,
                        data={},
                    )
                    s.add(doc)
                    docs[ev.key] = doc
                doc.version, doc.data, doc.updated_at = e.version, ev.stored_data(), now
                doc.doc_date = document_date(e.kind, ev.data)
                touched.append((ev, doc))
            await s.flush()  # one round for all documents: their ids key the postings
            for ev, doc in touched:
                planned = plan(ev.event.kind, ev.data, self.rules(ev.event.integration))
                current = postings.setdefault(doc.id, {})
                self._apply_plan(s, doc, ev.event.integration, planned, current, now)
            await s.flush()
            for ev, doc in touched:
                current = postings[doc.id]
                changes.extend(Change(p.id, doc.id, p.state, p.error_group_id) for p in current.values())
                result.accepted.append(
                    {
                        "id": ev.event.id,
                        "document": f"{ev.event.source}/{ev.event.kind}/{ev.event.id}",
                        "version": ev.event.version,
                        "postings": _posting_states(current),
                    }
                )
        return result, changes

    async def _existing_documents(
        self, s: AsyncSession, events: Sequence[ValidEvent]
    ) -> dict[tuple[str, str, str], Document]:
        # Locked (PostgreSQL) in one order for every batch, code point order like
        # Python's sort, so two batches that share documents wait for each other
        # instead of deadlocking, and a newer version is never overwritten.
        keys = sorted({ev.key for ev in events})
        key = (Document.source, Document.kind, Document.external_id)
        order = key if self.db.is_sqlite else tuple(c.collate("C") for c in key)
        found: dict[tuple[str, str, str], Document] = {}
        for chunk in _chunks(keys, 300):
            stmt = select(Document).where(tuple_(*key).in_(chunk)).order_by(*order).with_for_update()
            for doc in (await s.scalars(stmt)).all():
                found[(doc.source, doc.kind, doc.external_id)] = doc
        return found

    def _check_integrations_unchanged(
        self, events: Sequence[ValidEvent], docs: dict[tuple[str, str, str], Document]
    ) -> None:
        by_id = {v: k for k, v in self.integration_ids.items()}
        errors = []
        for index, ev in enumerate(events):
            doc = docs.get(ev.key)
            if doc is not None and by_id.get(doc.integration_id) != ev.event.integration:
                errors.append(
                    FieldError(
                        index=index,
                        field="integration",
                        message=f"document {ev.event.id} belongs to integration "
                        f"'{by_id.get(doc.integration_id)}'; it cannot move to another",
                    )
                )
        if errors:
            raise IngestRejected(errors)

    def _apply_plan(
        self,
        s: AsyncSession,
        doc: Document,
        integration: str,
        planned: list[PlannedPosting],
        current: dict[str, Posting],
        now: datetime,
    ) -> list[dict[str, Any]]:
        for want in planned:
            p = current.get(want.slot)
            code = _wait_code(want.wait_reason)
            if p is None:
                p = Posting(
                    document_id=doc.id,
                    integration_id=doc.integration_id,
                    kind=want.kind,
                    slot=want.slot,
                    period=want.period,
                    desired_hash=want.desired_hash,
                    idempotency_key=idempotency_key(
                        integration, doc.source, doc.kind, doc.external_id, want.slot
                    ),
                    company_key=integration,
                    attempts=0,
                    lookup_first=False,
                    force=False,
                    state=PostingState.WAITING if code else PostingState.PENDING,
                    error_code=code,
                    last_error=want.wait_reason,
                    queued_at=now,
                    next_attempt_at=now,
                    updated_at=now,
                    queued_trigger=Trigger.AUTO,
                )
                s.add(p)
                current[want.slot] = p
                continue
            changed = p.desired_hash != want.desired_hash
            p.desired_hash = want.desired_hash
            state = PostingState(p.state)
            if state is PostingState.BOOKED and changed and want.desired_hash == p.synced_hash:
                # needed again exactly as booked (say, paid again after a withdrawal): in line
                p.last_error = p.error_code = None
                p.updated_at = now
            elif state is PostingState.BOOKED and changed:
                msg = (
                    f"The document changed after {p.external_ref} was booked in the ledger; "
                    "the change was not sent. Correct it in the ledger."
                )
                p.last_error, p.updated_at = msg, now
                s.add(
                    Attempt(
                        posting_id=p.id,
                        started_at=now,
                        finished_at=now,
                        trigger=Trigger.AUTO,
                        operation=Operation.NONE,
                        outcome=Outcome.REFUSED,
                        error_code="booked",
                        message=msg,
                        external_ref=p.external_ref,
                    )
                )
            elif state is PostingState.WAITING and code is None:
                self._requeue(p, now, Trigger.AUTO, None)
            elif state is PostingState.WAITING:
                p.error_code, p.last_error = code, want.wait_reason
            elif changed and state in (
                PostingState.SYNCED,
                PostingState.FAILED,
                PostingState.RETRYING,
                PostingState.WITHDRAWN,
            ):
                self._requeue(p, now, Trigger.AUTO, None)
        wanted = {want.slot for want in planned}
        for slot, p in current.items():
            if slot not in wanted and p.desired_hash is not None:
                entry = withdraw(p, doc.kind, now)
                if entry is not None:
                    s.add(entry)
        return _posting_states(current)

    @staticmethod
    def _requeue(p: Posting, now: datetime, trigger: Trigger, actor: str | None) -> None:
        p.state = PostingState.PENDING
        p.queued_at = p.next_attempt_at = p.updated_at = now
        p.queued_trigger, p.queued_actor = trigger, actor
        p.error_code = p.last_error = None

    # -- a person's actions -----------------------------------------------------------------
    async def document(self, s: AsyncSession, source: str, kind: str, external_id: str) -> Document:
        doc = (
            await s.scalars(
                select(Document).where(
                    Document.source == source,
                    Document.kind == kind,
                    Document.external_id == external_id,
                )
            )
        ).one_or_none()
        if doc is None:
            raise DocumentNotFound(f"No {kind} {external_id} from {source}.")
        return doc

    async def resync(
        self,
        source: str,
        kind: str,
        external_id: str,
        posting_kinds: Sequence[str],
        actor: str | None,
        trigger: Trigger = Trigger.MANUAL,
    ) -> list[ActionOutcome]:
        """Queue the named postings of one document again (``all``: every one that applies)."""
        now = self.clock()
        outcomes: list[ActionOutcome] = []
        changes: list[Change] = []
        async with self.db.sessions() as s, s.begin():
            doc = await self.document(s, source, kind, external_id)
            outcomes = await self._resync_document(s, doc, set(posting_kinds), actor, trigger, now, changes)
            s.add(
                Activity(
                    actor=actor,
                    action="resync",
                    subject=f"document:{doc.id}",
                    at=now,
                    outcome="ok" if any(o.ok for o in outcomes) else "refused",
                    detail={
                        "postings": [o.kind for o in outcomes],
                        "messages": [o.message for o in outcomes],
                    },
                )
            )
        self.feed.publish(changes)
        self._wake()
        return outcomes

    async def _resync_document(
        self,
        s: AsyncSession,
        doc: Document,
        kinds: set[str],
        actor: str | None,
        trigger: Trigger,
        now: datetime,
        changes: list[Change],
    ) -> list[ActionOutcome]:
        integration = next(n for n, i in self.integration_ids.items() if i == doc.integration_id)
        data = DATA_MODELS[doc.kind].model_validate(doc.data)
        planned = self._resync_plan(doc)
        existing = {
            p.slot: p for p in (await s.scalars(select(Posting).where(Posting.document_id == doc.id))).all()
        }
        # a kind ("journal") names every posting of that kind; a slot ("journal:2026-10") one
        wanted = (
            set(planned)
            if "all" in kinds
            else {
                slot for slot in set(planned) | set(existing) if slot in kinds or slot.split(":")[0] in kinds
            }
        )
        outcomes: list[ActionOutcome] = []
        for kind in sorted(kinds - {"all"}):
            if not any(slot == kind or slot.split(":")[0] == kind for slot in wanted):
                outcomes.append(ActionOutcome(None, kind, False, _why_no_posting(doc, kind, data)))
        for slot in sorted(wanted):
            p = existing.get(slot)
            want = planned.get(slot)
            if p is None and want is not None:
                current: dict[str, Posting] = {}
                self._apply_plan(s, doc, integration, [want], current, now)
                await s.flush()
                p = current[slot]
                p.queued_trigger, p.queued_actor, p.force = trigger, actor, True
                p.state, p.error_code, p.last_error = PostingState.PENDING, None, None
                outcomes.append(ActionOutcome(p.id, p.kind, True, f"{_label(p)} queued."))
                changes.append(Change(p.id, doc.id, p.state, None))
                continue
            if p is None:
                continue
            if want is None and p.state == PostingState.WITHDRAWN:
                outcomes.append(ActionOutcome(p.id, p.kind, False, _why_no_posting(doc, p.kind, data)))
                continue
            outcome = await self._requeue_guarded(s, p, want, trigger, actor, now)
            outcomes.append(outcome)
            if outcome.ok:
                changes.append(Change(p.id, doc.id, PostingState.PENDING, p.error_group_id))
        if any(o.ok for o in outcomes):
            await s.run_sync(clear_backoff, integration)
        return outcomes

    def _resync_plan(self, doc: Document) -> dict[str, PlannedPosting]:
        """The postings a person's resync of ``doc`` asks for, by slot."""
        integration = next(n for n, i in self.integration_ids.items() if i == doc.integration_id)
        data = DATA_MODELS[doc.kind].model_validate(doc.data)
        # A person asked: history-start and auto-transfer do not hold it back.
        return {
            p.slot: p
            for p in plan(doc.kind, data, Eligibility(True, None, self.rules(integration).ready_statuses))
        }

    async def _requeue_guarded(
        self,
        s: AsyncSession,
        p: Posting,
        want: PlannedPosting | None,
        trigger: Trigger,
        actor: str | None,
        now: datetime,
    ) -> ActionOutcome:
        if p.state == PostingState.BOOKED:
            return ActionOutcome(
                p.id,
                p.kind,
                False,
                (
                    f"{_label(p)} is booked in the ledger as {p.external_ref}. A booked voucher "
                    "cannot be changed, and a second one would book it twice; correct it in the ledger."
                ),
            )
        if p.state == PostingState.IN_FLIGHT:
            return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is being sent right now.")
        if p.state == PostingState.PENDING:
            return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is already queued.")
        values: dict[str, Any] = dict(
            state=PostingState.PENDING,
            queued_at=now,
            next_attempt_at=now,
            updated_at=now,
            queued_trigger=trigger,
            queued_actor=actor,
            force=True,
        )
        if want is not None:
            values["desired_hash"] = want.desired_hash
        done = await s.execute(
            update(Posting)
            .where(Posting.id == p.id, Posting.state.in_(RESYNCABLE))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not done.rowcount:
            return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is already queued.")
        return ActionOutcome(p.id, p.kind, True, f"{_label(p)} queued.")

    async def resync_many(
        self,
        flt: BulkFilter,
        actor: str | None,
        trigger: Trigger = Trigger.BULK,
        progress: Callable[[BulkResult], Any] | None = None,
        chunk: int = 500,
    ) -> BulkResult:
        """Bulk resync: unpaid bills -> invoice posting; paid -> invoice and payment.

        Works through the matching documents in id order, a chunk per
        transaction, so memory stays flat however many there are.
        """
        result = BulkResult()
        last_id = 0
        while True:
            now = self.clock()
            changes: list[Change] = []
            async with self.db.sessions() as s, s.begin():
                stmt = (
                    select(Document)
                    .where(Document.id > last_id)
                    .where(Document.id.in_(self._bulk_postings(flt).with_only_columns(Posting.document_id)))
                    .order_by(Document.id)
                    .limit(chunk)
                )
                docs = list((await s.scalars(stmt)).all())
                if not docs:
                    break
                # the chunk in a few statements; documents that need a new posting one by one
                done = await requeue_chunk(
                    s, docs, self._resync_plan, RESYNCABLE, actor, trigger, now, changes
                )
                result.documents += len(docs)
                result.queued += done.queued
                result.refused += done.refused
                for iid in done.integration_ids:
                    name = next(n for n, i in self.integration_ids.items() if i == iid)
                    await s.run_sync(clear_backoff, name)
                for doc in done.fallback:
                    outcomes = await self._resync_document(s, doc, {"all"}, actor, trigger, now, changes)
                    result.queued += sum(1 for o in outcomes if o.ok)
                    result.refused += sum(1 for o in outcomes if not o.ok)
                last_id = docs[-1].id
                s.expunge_all()
            self.feed.publish(changes)
            self._wake()
            if progress is not None:
                await progress(result)
        async with self.db.sessions() as s, s.begin():
            s.add(
                Activity(
                    actor=actor,
                    action="resync_many",
                    subject="bulk",
                    at=self.clock(),
                    outcome="ok",
                    detail={
                        "documents": result.documents,
                        "queued": result.queued,
                        "refused": result.refused,
                    },
                )
            )
        return result

    async def bulk_count(self, flt: BulkFilter) -> int:
        """How many documents a bulk resync with this filter would touch."""
        async with self.db.sessions() as s:
            sub = self._bulk_postings(flt).with_only_columns(Posting.document_id).subquery()
            return int(await s.scalar(select(func.count(func.distinct(sub.c.document_id)))) or 0)

    async def bulk_documents(self, flt: BulkFilter, limit: int = 100) -> list[Document]:
        """The first documents a bulk resync would touch (to narrow the selection)."""
        async with self.db.sessions() as s:
            ids = self._bulk_postings(flt).with_only_columns(Posting.document_id)
            return list(
                (
                    await s.scalars(
                        select(Document).where(Document.id.in_(ids)).order_by(Document.id).limit(limit)
                    )
                ).all()
            )

    def _bulk_postings(self, flt: BulkFilter) -> Any:
        stmt = select(Posting.id).where(Posting.state.in_(flt.states))
        if flt.integration:
            stmt = stmt.where(Posting.integration_id == self.integration_ids[flt.integration])
        if flt.error_group_id is not None:
            stmt = stmt.where(Posting.error_group_id == flt.error_group_id)
        if flt.since or flt.until or flt.document_ids is not None:
            stmt = stmt.join(Document, Document.id == Posting.document_id)
            if flt.since:
                stmt = stmt.where(Document.doc_date >= flt.since)
            if flt.until:
                stmt = stmt.where(Document.doc_date <= flt.until)
            if flt.document_ids is not None:
                stmt = stmt.where(Document.id.in_(flt.document_ids))
        return stmt

    async def ignore(self, posting_id: int, actor: str | None) -> ActionOutcome:
        """A person decides this posting is not to be sent."""
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            p = await s.get(Posting, posting_id)
            if p is None:
                return ActionOutcome(posting_id, "", False, "No such posting.")
            done = await s.execute(
                update(Posting)
                .where(Posting.id == posting_id, Posting.state.in_(IGNORABLE))
                .values(state=PostingState.IGNORED, updated_at=now, queued_actor=actor)
                .execution_options(synchronize_session=False)
            )
            ok = bool(done.rowcount)
            message = (
                f"{_label(p)} ignored."
                if ok
                else (
                    f"{_label(p)} is {p.state.replace('_', ' ')}; only a posting that waits or failed "
                    "can be ignored."
                )
            )
            s.add(
                Activity(
                    actor=actor,
                    action="ignore",
                    subject=f"posting:{posting_id}",
                    at=now,
                    outcome="ok" if ok else "refused",
                    detail={"message": message},
                )
            )
            if ok:
                s.add(
                    Attempt(
                        posting_id=posting_id,
                        started_at=now,
                        finished_at=now,
                        trigger=Trigger.MANUAL,
                        actor=actor,
                        operation=Operation.NONE,
                        outcome=Outcome.REFUSED,
                        message="Ignored by a person.",
                    )
                )
                if p.error_group_id is not None:
                    # the last open member ignored: the group has nothing left to fix
                    gid = p.error_group_id
                    await s.run_sync(lambda ss: close_settled_groups(ss, [gid]))
            change = Change(p.id, p.document_id, PostingState.IGNORED if ok else p.state, p.error_group_id)
        self.feed.publish([change])
        return ActionOutcome(posting_id, p.kind, ok, message)

    # -- an integration's switches --------------------------------------------------------
    def _known(self, integration: str) -> None:
        if integration not in self.integrations:
            raise UnknownIntegration(integration, sorted(self.integrations))

    async def set_paused(self, integration: str, paused: bool, actor: str | None) -> str:
        """Pause or resume an integration's transfers; nothing queued is lost."""
        self._known(integration)
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            done = await s.execute(
                update(Integration)
                .where(Integration.name == integration, Integration.paused.is_not(paused))
                .values(paused=paused)
                .execution_options(synchronize_session=False)
            )
            s.add(
                Activity(
                    actor=actor,
                    action="pause" if paused else "resume",
                    subject=f"integration:{integration}",
                    at=now,
                    outcome="ok" if done.rowcount else "unchanged",
                )
            )
        if not paused:
            self._wake()
        word = "paused" if paused else "resumed"
        if not done.rowcount:
            return f"{integration} was already {word}."
        return f"{integration} {word}." + (
            "" if not paused else " Nothing is sent until it is resumed; nothing queued is lost."
        )

    async def set_mapping(
        self, integration: str, what: str, source: str, number: int, actor: str | None
    ) -> list[int]:
        """Store a mapping a person set; queue again what failed for lack of it."""
        self._known(integration)
        async with self.db.sessions() as s, s.begin():
            requeued = await self.mapping_book.set(s, integration, what, source, number, actor, self.clock())
        self._wake()
        return requeued

    def _history_filter(self, integration: str, since: date) -> Any:
        cfg = self.integrations[integration]
        cond = [
            Posting.integration_id == self.integration_ids[integration],
            Posting.state == PostingState.WAITING,
            Posting.error_code == WAIT_HISTORY,
            Document.doc_date >= since,
        ]
        if cfg.history_start:
            cond.append(Document.doc_date < cfg.history_start)
        return cond

    async def history_count(self, integration: str, since: date) -> int:
        """How many postings ``history`` would send (they wait for the history start)."""
        self._known(integration)
        async with self.db.sessions() as s:
            return int(
                await s.scalar(
                    select(func.count())
                    .select_from(Posting)
                    .join(Document, Document.id == Posting.document_id)
                    .where(*self._history_filter(integration, since))
                )
                or 0
            )

    async def transfer_history(self, integration: str, since: date, actor: str | None) -> int:
        """Send documents dated from ``since`` that waited because of the history start."""
        self._known(integration)
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            ids = (
                select(Posting.id)
                .join(Document, Document.id == Posting.document_id)
                .where(*self._history_filter(integration, since))
            )
            done = await s.execute(
                update(Posting)
                .where(Posting.id.in_(ids), Posting.state == PostingState.WAITING)
                .values(
                    state=PostingState.PENDING,
                    error_code=None,
                    last_error=None,
                    queued_at=now,
                    next_attempt_at=now,
                    updated_at=now,
                    queued_trigger=Trigger.MANUAL,
                    queued_actor=actor,
                )
                .execution_options(synchronize_session=False)
            )
            s.add(
                Activity(
                    actor=actor,
                    action="history",
                    subject=f"integration:{integration}",
                    at=now,
                    outcome="ok",
                    detail={"since": since.isoformat(), "queued": done.rowcount},
                )
            )
        self._wake()
        return int(done.rowcount or 0)


def _label(p: Posting) -> str:
    name = {"invoice": "The invoice posting", "payment": "The payment posting", "journal": "The journal"}.get(
        p.kind, f"The {p.kind.replace('_', ' ')} posting"
    )
    return f"{name} ({p.period})" if p.period else name


def _why_no_posting(doc: Document, kind: str, data: Any) -> str:
    if doc.kind == "bill" and kind == PostingKind.PAYMENT and getattr(data, "paid", None) is None:
        return "The bill is not paid, so it has no payment posting to sync. Mark it paid in the source first."
    if doc.kind == "bill" and kind == PostingKind.INVOICE and not getattr(data, "approved", True):
        return "The bill is not approved, so it has no invoice posting yet."
    return f"A {doc.kind.replace('_', ' ')} has no {kind} posting."


def _posting_states(current: dict[str, Posting]) -> list[dict[str, Any]]:
    return [
        {"kind": p.kind, "period": p.period, "state": p.state}
        if p.period
        else {"kind": p.kind, "state": p.state}
        for p in current.values()
    ]


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
