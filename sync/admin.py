"""An integration's switches a person flips: pause/resume, mappings, history transfer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from storage.models import Activity
from storage.queries.activity import latest_of
from storage.queries.integrations import set_integration_paused
from storage.queries.reads import postings_to_show
from storage.queries.requeue import count_waiting_for_history, requeue_waiting_for_history
from storage.states import PostingState
from sync.changes import Change
from sync.engine import WAIT_HISTORY, Engine


@dataclass(frozen=True)
class TeamChange:
    """A switch a person flipped: the private answer, and the ``activity`` row the channel
    is told about (``None``: nothing changed, nothing to announce)."""

    said: str
    integration: str
    activity_id: int | None


async def pause_integration(engine: Engine, integration: str, paused: bool, actor: str | None) -> TeamChange:
    """Pause or resume an integration's transfers; nothing queued is lost."""
    engine.known(integration)
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
        changed = await set_integration_paused(s, integration, paused)
        row = Activity(
            actor=actor,
            action="pause" if paused else "resume",
            subject=f"integration:{integration}",
            at=now,
            outcome="ok" if changed else "unchanged",
        )
        s.add(row)
        await s.flush()
        row_id = row.id
    if not paused:
        engine.wake()
    word = "paused" if paused else "resumed"
    if not changed:
        return TeamChange(f"{integration} was already {word}.", integration, None)
    said = f"{integration} {word}." + (
        "" if not paused else " Nothing is sent until it is resumed; nothing queued is lost."
    )
    return TeamChange(said, integration, row_id)


async def set_paused(engine: Engine, integration: str, paused: bool, actor: str | None) -> str:
    """Pause or resume an integration's transfers; the answer for the person who asked."""
    return (await pause_integration(engine, integration, paused, actor)).said


async def map_account(
    engine: Engine, integration: str, what: str, source: str, number: int, actor: str | None
) -> tuple[list[int], int | None]:
    """Store a mapping a person set; queue again what failed for lack of it. Returns the
    postings queued again and the ``activity`` row the channel is told about."""
    engine.known(integration)
    async with engine.db.sessions() as s, s.begin():
        requeued = await engine.mapping_book.set(s, integration, what, source, number, actor, engine.clock())
        row_id = await latest_of(s, "map", f"integration:{integration}")
        queued = await postings_to_show(s, requeued) if requeued else []
    # their error group's message shows "Resyncing", then what the next attempt says
    engine.feed.publish([Change(r.id, r.document_id, PostingState.PENDING, r.error_group_id) for r in queued])
    engine.wake()
    return requeued, row_id


async def set_mapping(
    engine: Engine, integration: str, what: str, source: str, number: int, actor: str | None
) -> list[int]:
    """Store a mapping a person set; queue again what failed for lack of it."""
    return (await map_account(engine, integration, what, source, number, actor))[0]


async def history_count(engine: Engine, integration: str, since: date) -> int:
    """How many postings ``history`` would send (they wait for the history start)."""
    engine.known(integration)
    async with engine.db.sessions() as s:
        start = engine.integrations[integration].history_start
        return await count_waiting_for_history(
            s, engine.integration_ids[integration], WAIT_HISTORY, since, start
        )


async def transfer_history(engine: Engine, integration: str, since: date, actor: str | None) -> int:
    """Send documents dated from ``since`` that waited because of the history start."""
    engine.known(integration)
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
        queued = await requeue_waiting_for_history(
            s,
            engine.integration_ids[integration],
            WAIT_HISTORY,
            since,
            engine.integrations[integration].history_start,
            now=now,
            actor=actor,
        )
        s.add(
            Activity(
                actor=actor,
                action="history",
                subject=f"integration:{integration}",
                at=now,
                outcome="ok",
                detail={"since": since.isoformat(), "queued": queued},
            )
        )
    engine.wake()
    return queued
