"""Bulk resync (and the counts the bulk modal shows), a chunk of documents at a time.

The rules are those of a person's resync of ``all`` postings of each document
(``sync.resync.requeue_document``): a posting in flight, already queued or booked is
refused; any other is queued again (``force``), its desired content refreshed.
A document that needs a posting it does not have yet (a bill paid since) goes
the per-document way, which creates it. The rest is one guarded UPDATE per chunk:
a 100,000-posting resync takes about a minute instead of ten (five statements per
document before), and memory stays flat (``bench/retry_scan.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from storage.db import Session
from storage.models import Activity, Document, Posting
from storage.queries import bulk_runs
from storage.queries.documents import (
    PostingSelection,
    count_selected_documents,
    postings_of_documents,
    selected_documents,
)
from storage.queries.postings import clear_backoff
from storage.queries.requeue import force_requeue_many, refresh_desired_hashes
from storage.states import PostingState, Trigger
from sync.changes import Change
from sync.engine import Engine
from sync.planner import PlannedPosting
from sync.resync import RESYNCABLE, requeue_document, resync_plan


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


@dataclass
class ChunkResult:
    """What one chunk did; ``fallback`` documents still need the per-document path."""

    queued: int = 0
    refused: int = 0
    integration_ids: set[int] = field(default_factory=set)
    fallback: list[Document] = field(default_factory=list)


def _pick(
    docs: Sequence[Document],
    existing: dict[int, dict[str, Posting]],
    planned_of: Callable[[Document], dict[str, PlannedPosting]],
    resyncable: Sequence[str],
    result: ChunkResult,
) -> tuple[dict[int, Posting], list[tuple[int, str]]]:
    """The postings to queue (by id) and the desired hashes to refresh with them."""
    take: dict[int, Posting] = {}
    refresh: list[tuple[int, str]] = []
    for doc in docs:
        planned = planned_of(doc)
        mine = existing.get(doc.id, {})
        if any(slot not in mine for slot in planned):
            result.fallback.append(doc)
            continue
        for slot in sorted(planned):
            p = mine[slot]
            if p.state not in resyncable:
                result.refused += 1  # in flight, already queued, or booked
                continue
            take[p.id] = p
            if p.desired_hash != planned[slot].desired_hash:
                refresh.append((p.id, planned[slot].desired_hash))
    return take, refresh


async def requeue_chunk(
    s: Session,
    docs: Sequence[Document],
    planned_of: Callable[[Document], dict[str, PlannedPosting]],
    resyncable: Sequence[str],
    actor: str | None,
    trigger: Trigger,
    now: datetime,
    changes: list[Change],
) -> ChunkResult:
    """Queue every planned posting of ``docs`` again, guarded by its state."""
    result = ChunkResult()
    existing: dict[int, dict[str, Posting]] = {}
    for p in await postings_of_documents(s, [d.id for d in docs]):
        existing.setdefault(p.document_id, {})[p.slot] = p
    take, refresh = _pick(docs, existing, planned_of, resyncable, result)
    if not take:
        return result
    done = await force_requeue_many(s, list(take), resyncable, now=now, trigger=trigger, actor=actor)
    await refresh_desired_hashes(s, [(pid, dh) for pid, dh in refresh if pid in done])
    result.queued += len(done)
    result.refused += len(take) - len(done)  # someone else moved it meanwhile
    for pid in sorted(done):
        p = take[pid]
        result.integration_ids.add(p.integration_id)
        changes.append(Change(pid, p.document_id, PostingState.PENDING, p.error_group_id))
    return result


async def resync_many(
    engine: Engine,
    flt: BulkFilter,
    actor: str | None,
    trigger: Trigger = Trigger.BULK,
    progress: Callable[[BulkResult], Any] | None = None,
    chunk: int = 500,
    run_id: int | None = None,
) -> BulkResult:
    """Bulk resync: unpaid bills -> invoice posting; paid -> invoice and payment.

    Works through the matching documents in id order, a chunk per
    transaction, so memory stays flat however many there are. ``run_id``
    (:func:`start_bulk_run`): the run remembers the postings it queued, so its
    message can follow their outcomes.
    """
    result = BulkResult()
    last_id = 0
    while True:
        now = engine.clock()
        changes: list[Change] = []
        async with engine.db.sessions() as s, s.begin():
            docs = await selected_documents(s, _selection(engine, flt), after_id=last_id, limit=chunk)
            if not docs:
                break
            # the chunk in a few statements; documents that need a new posting one by one
            done = await requeue_chunk(
                s, docs, partial(resync_plan, engine), RESYNCABLE, actor, trigger, now, changes
            )
            result.documents += len(docs)
            result.queued += done.queued
            result.refused += done.refused
            for iid in done.integration_ids:
                name = next(n for n, i in engine.integration_ids.items() if i == iid)
                await s.run_sync(clear_backoff, name)
            for doc in done.fallback:
                outcomes = await requeue_document(engine, s, doc, {"all"}, actor, trigger, now, changes)
                result.queued += sum(1 for o in outcomes if o.ok)
                result.refused += sum(1 for o in outcomes if not o.ok)
            last_id = docs[-1].id
            if run_id is not None:
                await _record_run(s, run_id, result, changes, finished=False)
            s.expunge_all()
        engine.feed.publish(changes)
        engine.wake()
        if progress is not None:
            await progress(result)
    if run_id is not None:
        async with engine.db.sessions() as s, s.begin():
            await _record_run(s, run_id, result, [], finished=True)
    await _log_bulk(engine, actor, result)
    return result


async def _record_run(
    s: Session, run_id: int, result: BulkResult, changes: list[Change], *, finished: bool
) -> None:
    """The run's counts so far, and the postings this chunk queued."""
    await bulk_runs.add_postings(s, run_id, [c.posting_id for c in changes])
    await bulk_runs.update_run(
        s,
        run_id,
        documents=result.documents,
        queued=result.queued,
        refused=result.refused,
        finished=finished,
    )


async def start_bulk_run(engine: Engine, actor: str | None, total: int) -> int:
    """A bulk resync about to start over ``total`` documents; returns the run's id."""
    async with engine.db.sessions() as s, s.begin():
        detail = {"actor": actor, "total": total, "documents": 0, "queued": 0, "refused": 0}
        return await bulk_runs.start_run(s, actor, detail, engine.clock())


async def _log_bulk(engine: Engine, actor: str | None, result: BulkResult) -> None:
    async with engine.db.sessions() as s, s.begin():
        s.add(
            Activity(
                actor=actor,
                action="resync_many",
                subject="bulk",
                at=engine.clock(),
                outcome="ok",
                detail={
                    "documents": result.documents,
                    "queued": result.queued,
                    "refused": result.refused,
                },
            )
        )


async def bulk_count(engine: Engine, flt: BulkFilter) -> int:
    """How many documents a bulk resync with this filter would touch."""
    async with engine.db.sessions() as s:
        return await count_selected_documents(s, _selection(engine, flt))


async def bulk_documents(engine: Engine, flt: BulkFilter, limit: int = 100) -> list[Document]:
    """The first documents a bulk resync would touch (to narrow the selection)."""
    async with engine.db.sessions() as s:
        return await selected_documents(s, _selection(engine, flt), limit=limit)


def _selection(engine: Engine, flt: BulkFilter) -> PostingSelection:
    return PostingSelection(
        states=flt.states,
        integration_id=engine.integration_ids[flt.integration] if flt.integration else None,
        error_group_id=flt.error_group_id,
        since=flt.since,
        until=flt.until,
        document_ids=flt.document_ids,
    )
