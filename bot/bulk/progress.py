"""The bulk resync's message: queued, then what became of the postings it queued.

It is an outbox subject (``bulk``): rebuilt from the database whenever one of
its postings changes, so it says "done" only when every posting it queued was
sent or failed again, and says why those failed, grouped by reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.block_kit import SlackBody, escape, finish, mention, section
from bot.outbox.coverage import BULK
from storage.db import Database, Session
from storage.queries import bulk_runs, outbox
from storage.states import PostingState

SENT = (PostingState.SYNCED, PostingState.BOOKED)
WAITING = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING, PostingState.WAITING)


@dataclass(frozen=True)
class BulkProgress:
    """One bulk resync: what it queued and where those postings are now."""

    actor: str | None
    total: int
    documents: int
    queued: int
    refused: int
    finished: bool
    counts: Mapping[str, int]
    #: why the postings that fail now fail: (reason, how many), most first
    reasons: Sequence[tuple[str, int]] = ()

    def count(self, states: Sequence[str]) -> int:
        return sum(self.counts.get(s, 0) for s in states)

    @property
    def settled(self) -> bool:
        """Every posting it queued was tried: nothing of it waits any more."""
        return self.finished and not self.count(WAITING)

    @property
    def status(self) -> str:
        return "done" if self.settled else "running"


async def load_bulk_progress(s: Session, run_id: int) -> BulkProgress | None:
    """The run's message facts, read now (``None``: no such run)."""
    found = await bulk_runs.run_detail(s, run_id)
    if found is None:
        return None
    run, counts = found
    d: dict[str, Any] = run.detail or {}
    reasons = [(str(r or "no reason given"), int(n)) for r, n in await bulk_runs.failure_reasons(s, run_id)]
    return BulkProgress(
        actor=d.get("actor"),
        total=int(d.get("total", 0)),
        documents=int(d.get("documents", 0)),
        queued=int(d.get("queued", 0)),
        refused=int(d.get("refused", 0)),
        finished=bool(d.get("finished")),
        counts=counts,
        reasons=reasons,
    )


def progress_message(p: BulkProgress) -> SlackBody:
    """ "2 postings queued · 1 sent · 1 waiting", then "2 failed again: Account 9999 does not exist"."""
    sent, waiting, failed = p.count(SENT), p.count(WAITING), p.count((PostingState.FAILED,))
    who = f" — asked by {mention(p.actor)}"
    if not p.finished:
        head = f":arrows_counterclockwise: *Bulk resync running*{who}"
        text = f"Bulk resync: {p.documents} / {p.total} documents"
    elif not p.settled:
        head = f":hourglass_flowing_sand: *Bulk resync sending*{who}"
        text = f"Bulk resync: {sent} of {p.queued} postings sent, {waiting} waiting"
    elif failed:
        head = f":x: *Bulk resync finished: {failed:,} failed again*{who}"
        why = f": {p.reasons[0][0]}" if p.reasons else ""
        text = f"Bulk resync finished: {sent} sent, {failed} failed again{why}"
    else:
        head = f":white_check_mark: *Bulk resync done: {sent:,} sent*{who}"
        text = f"Bulk resync done: {sent} sent, 0 failed"
    lines = [
        head,
        f"{p.documents:,} / {p.total:,} documents · {p.queued:,} postings queued · {sent:,} sent · "
        f"{waiting:,} waiting · {failed:,} failed again",
    ]
    if p.refused:
        lines.append(f"{p.refused:,} refused (already queued, in flight or booked)")
    blocks = [section("\n".join(lines))]
    for reason, n in p.reasons:
        blocks.append(section(f"*{n:,} failed again:* {escape(reason[:2800])}"))
    return finish(escape(text), blocks)


async def show_progress(db: Database, run_id: int, channel: str, now: datetime) -> None:
    """The run's message is due in ``channel`` (posted, or rebuilt if it is there already)."""
    async with db.sessions() as s, s.begin():
        await outbox.ensure_row(s, BULK, run_id, channel, now, now)
        await outbox.mark_changed(s, BULK, [run_id], now)
