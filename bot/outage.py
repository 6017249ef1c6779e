"""Outage watch: a ledger that has only failed transiently for N minutes gets ONE message.

The watch folds the attempt log, newest part only, into one ``outages`` row per
integration: when the ledger last answered, and the first transient failure
since (``failing_since``). Once that streak is ``threshold`` old and something
still waits, the outage is announced (``since``): one Slack message, updated in
place as the counts change, and a recovery update when an attempt is answered
again. Per-item messages only ever come for ``failed`` postings, and while an
outage is announced the worker does not give postings up (``sync/worker.py``),
so the channel hears about the outage once.

State lives in the database and a run holds a short lease, so replicas take
turns; folding the same attempts twice gives the same row (the watermark
``checked_attempt_id`` only moves forward).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.coverage import OUTAGE
from bot.ops.facts import OutageNotice
from storage.models import Outage
from storage.queries import figures, outages, outbox
from storage.queries.postings import acquire_lease, release_lease
from storage.states import MessageState, Outcome, PostingState
from sync.engine import Engine

log = logging.getLogger(__name__)

#: attempts read per query, and queries per run (a first run on a big log catches up in steps)
BATCH = 20_000
MAX_BATCHES = 10
#: a new row starts this many attempts back, not at the beginning of time
LOOKBACK = 20_000
LEASE_KEY = "job:outage_watch"
#: attempts younger than this are left for the next run: on PostgreSQL an attempt's id is
#: taken before its transaction commits, so a lower id may still appear a moment later, and
#: the watermark must not pass it
SETTLE = timedelta(seconds=10)
WAITING = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING)
TRANSIENT = (Outcome.RETRYING, Outcome.UNCERTAIN)
#: the ledger answered: it is reachable (a refusal without a call, e.g. quota, says nothing)
ANSWERED = (Outcome.SYNCED, Outcome.BOOKED, Outcome.FAILED)
#: a transient failure the worker turned into ``failed`` after too many attempts
#: (``sync/worker.py`` writes this prefix); the ledger did not answer that one either
GAVE_UP_PREFIX = "Gave up after"


@dataclass
class WatchReport:
    """What one run found (the scheduler shows it in ``/ledger queue``)."""

    announced: list[str] = field(default_factory=list)
    ongoing: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    skipped: bool = False

    def __str__(self) -> str:
        if self.skipped:
            return "another replica is watching"
        parts = [f"{n} unreachable" for n in self.announced + self.ongoing]
        parts += [f"{n} back" for n in self.recovered]
        return ", ".join(parts) or "all reachable"


def _is_transient(outcome: str, message: str | None) -> bool:
    return outcome in TRANSIENT or (outcome == Outcome.FAILED and (message or "").startswith(GAVE_UP_PREFIX))


def fold(row: Outage, attempt: Any) -> bool:
    """Take one attempt into the row; ``True`` when it ended an announced outage."""
    if attempt.id <= row.checked_attempt_id:
        return False  # folded before (another replica, or an earlier batch)
    ended = False
    at = attempt.finished_at or attempt.started_at
    if _is_transient(attempt.outcome, attempt.message):
        if row.failing_since is None:
            row.failing_since = attempt.started_at
        row.last_seen = max(row.last_seen, at) if row.last_seen else at
        row.error_code = attempt.error_code
        row.last_error = attempt.message
    elif attempt.outcome in ANSWERED:
        row.last_answer_at = at
        row.failing_since = None
        if row.since is not None and row.recovered_at is None:
            row.recovered_at = at
            ended = True
    return ended


def _ends_outage(row: Outage, attempt: Any) -> bool:
    return (
        row.since is not None
        and row.recovered_at is None
        and attempt.outcome in ANSWERED
        and not _is_transient(attempt.outcome, attempt.message)
    )


class OutageWatch:
    """One run: fold new attempts, then announce, update or end outages."""

    def __init__(
        self, engine: Engine, threshold: timedelta, holder: str, lease: timedelta = timedelta(minutes=5)
    ):
        self.engine = engine
        self.threshold = threshold
        self.holder = holder
        self.lease = lease

    async def run(self, channel_of: Callable[[int], str | None] | None = None) -> WatchReport:
        """Check every integration; ``channel_of`` names where its message goes (no Slack: none)."""
        db, now = self.engine.db, self.engine.clock()
        # one holder per run: two runs in one process must not share the lease either
        holder = f"{self.holder[:70]}:{uuid.uuid4().hex[:8]}"
        async with db.sessions() as s, s.begin():
            mine = await s.run_sync(lambda ss: acquire_lease(ss, LEASE_KEY, holder, now, now + self.lease))
        if not mine:
            return WatchReport(skipped=True)
        try:
            async with db.sessions() as s, s.begin():
                return await self._check(s, now, channel_of)
        finally:
            async with db.sessions() as s, s.begin():
                await s.run_sync(lambda ss: release_lease(ss, LEASE_KEY, holder))

    async def _check(
        self, s: AsyncSession, now: datetime, channel_of: Callable[[int], str | None] | None
    ) -> WatchReport:
        integrations = await outages.integrations_by_id(s)
        rows = await outages.outage_rows(s)
        missing = [iid for iid in integrations if iid not in rows]
        if missing:
            top = await outages.newest_attempt_id(s)
            for iid in missing:
                rows[iid] = Outage(
                    integration_id=iid, checked_attempt_id=max(0, top - LOOKBACK), waiting=0, updated_at=now
                )
                s.add(rows[iid])
        ended = await self._fold_new_attempts(s, rows, now - SETTLE)
        waiting = await figures.postings_per_integration(s, WAITING)
        retrying = await outages.retrying_by_integration(s)
        report = WatchReport()
        for iid, row in rows.items():
            integ = integrations.get(iid)
            if integ is None:
                continue
            channel = channel_of(iid) if channel_of else None
            ongoing = row.since is not None and row.recovered_at is None
            if iid in ended:
                report.recovered.append(integ.name)
                log.info("ledger reachable again", extra={"integration": integ.name})
                await self._tell(s, iid, channel, now, new=False)
            elif ongoing:
                if self._refresh(row, int(waiting.get(iid, 0)), retrying.get(iid)):
                    await self._tell(s, iid, channel, now, new=False)
                report.ongoing.append(integ.name)
            elif (
                row.failing_since is not None
                and not integ.paused
                and now - row.failing_since >= self.threshold
                and waiting.get(iid, 0)
            ):
                row.since, row.recovered_at = row.failing_since, None
                self._refresh(row, int(waiting[iid]), retrying.get(iid))
                report.announced.append(integ.name)
                log.warning(
                    "ledger unreachable",
                    extra={"integration": integ.name, "since": row.since.isoformat(), "waiting": row.waiting},
                )
                await self._tell(s, iid, channel, now, new=True)
            row.updated_at = now
        return report

    async def _fold_new_attempts(
        self, s: AsyncSession, rows: dict[int, Outage], horizon: datetime
    ) -> set[int]:
        """Read attempts past the watermark, oldest first, up to ``horizon``; returns the
        integrations that recovered."""
        ended: set[int] = set()
        for _ in range(MAX_BATCHES):
            start = min((r.checked_attempt_id for r in rows.values()), default=0)
            batch = await outages.attempts_after(s, start, BATCH)
            top, settled = None, True
            for a in batch:
                row = rows.get(a.integration_id)
                if settled and (a.finished_at or a.started_at) > horizon:
                    settled = False  # too fresh: this one and the rest wait for the next run
                if not settled:
                    # ...but a ledger that answers again ends its outage now, while the
                    # message can still say how much waited (folding it later changes nothing)
                    if row is not None and _ends_outage(row, a):
                        row.recovered_at = a.finished_at or a.started_at
                        ended.add(a.integration_id)
                    continue
                if row is not None and fold(row, a):
                    ended.add(a.integration_id)
                top = a.id
            if top is not None:
                for row in rows.values():
                    row.checked_attempt_id = max(row.checked_attempt_id, top)
            if not settled or len(batch) < BATCH:
                break
        return ended

    def _refresh(self, row: Outage, waiting: int, retrying: tuple[int, datetime] | None) -> bool:
        """New counts for an ongoing outage; ``True`` when the message would change."""
        retry_seconds, next_try = row.retry_seconds, row.next_try_at
        if retrying is not None:
            attempts, next_try = retrying
            policy = self.engine.policy
            retry_seconds = round(min(policy.max_seconds, policy.base_seconds * 2 ** max(0, attempts - 1)))
        changed = (waiting, retry_seconds, next_try) != (row.waiting, row.retry_seconds, row.next_try_at)
        row.waiting, row.retry_seconds, row.next_try_at = waiting, retry_seconds, next_try
        return changed

    async def _tell(
        self, s: AsyncSession, iid: int, channel: str | None, now: datetime, *, new: bool
    ) -> None:
        """Queue the outage message (a new one for a new outage) or its update."""
        if channel is None:
            return
        await s.flush()
        existing = next(
            (r for r in (await outbox.rows_for(s, OUTAGE, [iid])).get(iid, []) if r.channel == channel), None
        )
        if existing is None:
            if new:
                await outbox.ensure_row(s, OUTAGE, iid, channel, now, now)
        elif (
            new
            and existing.subject_status == "recovered"
            and existing.state in (MessageState.POSTED, MessageState.TO_UPDATE)
        ):
            await outbox.reopen(s, existing.id, now, now)  # the old message stays as history
        else:
            await outbox.mark_changed(s, OUTAGE, [iid], now)


async def load_outage_notice(s: AsyncSession, integration_id: int) -> OutageNotice | None:
    """The facts of an integration's outage message, or ``None`` when none was announced."""
    found = await outages.outage_of_integration(s, integration_id)
    if found is None or found[0].since is None:
        return None
    o, name, kind = found
    return OutageNotice(
        integration=name,
        kind=kind,
        since=o.since,
        waiting=o.waiting,
        retry_seconds=o.retry_seconds,
        next_try_at=o.next_try_at,
        last_seen=o.last_seen,
        error_code=o.error_code,
        last_error=o.last_error,
        recovered_at=o.recovered_at,
    )
