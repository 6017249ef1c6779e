"""An integration's switches a person flips: pause/resume, mappings, history transfer."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select, update

from storage.models import Activity, Document, Integration, Posting
from storage.rows import rows_changed
from storage.states import PostingState, Trigger
from sync.engine import WAIT_HISTORY, Engine


async def set_paused(engine: Engine, integration: str, paused: bool, actor: str | None) -> str:
    """Pause or resume an integration's transfers; nothing queued is lost."""
    engine.known(integration)
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
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
                outcome="ok" if rows_changed(done) else "unchanged",
            )
        )
    if not paused:
        engine.wake()
    word = "paused" if paused else "resumed"
    if not rows_changed(done):
        return f"{integration} was already {word}."
    return f"{integration} {word}." + (
        "" if not paused else " Nothing is sent until it is resumed; nothing queued is lost."
    )


async def set_mapping(
    engine: Engine, integration: str, what: str, source: str, number: int, actor: str | None
) -> list[int]:
    """Store a mapping a person set; queue again what failed for lack of it."""
    engine.known(integration)
    async with engine.db.sessions() as s, s.begin():
        requeued = await engine.mapping_book.set(s, integration, what, source, number, actor, engine.clock())
    engine.wake()
    return requeued


def _history_filter(engine: Engine, integration: str, since: date) -> Any:
    cfg = engine.integrations[integration]
    cond = [
        Posting.integration_id == engine.integration_ids[integration],
        Posting.state == PostingState.WAITING,
        Posting.error_code == WAIT_HISTORY,
        Document.doc_date >= since,
    ]
    if cfg.history_start:
        cond.append(Document.doc_date < cfg.history_start)
    return cond


async def history_count(engine: Engine, integration: str, since: date) -> int:
    """How many postings ``history`` would send (they wait for the history start)."""
    engine.known(integration)
    async with engine.db.sessions() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(Posting)
                .join(Document, Document.id == Posting.document_id)
                .where(*_history_filter(engine, integration, since))
            )
            or 0
        )


async def transfer_history(engine: Engine, integration: str, since: date, actor: str | None) -> int:
    """Send documents dated from ``since`` that waited because of the history start."""
    engine.known(integration)
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
        ids = (
            select(Posting.id)
            .join(Document, Document.id == Posting.document_id)
            .where(*_history_filter(engine, integration, since))
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
                detail={"since": since.isoformat(), "queued": rows_changed(done)},
            )
        )
    engine.wake()
    return rows_changed(done)
