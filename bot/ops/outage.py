"""Outage watch, the Slack side: a ledger that is out gets ONE message, updated in place.

The rule (when a ledger is out, when it is back) is ``sync/outage.py``; this
module runs it under a short lease, so replicas take turns, and queues the
outage message: a new one for a new outage, an update as the counts change, and
a recovery update when an attempt is answered again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.ops.facts import OutageNotice
from bot.outbox.coverage import OUTAGE
from storage.db import Session
from storage.queries import outages, outbox
from storage.queries.postings import acquire_lease, release_lease
from storage.states import MessageState
from sync.engine import Engine
from sync.outage import OutageRule, WatchReport

LEASE_KEY = "job:outage_watch"


class OutageWatch:
    """One run under the lease: the rule decides (``sync/outage.py``), the channel is told."""

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
                report = await self._check(s, now, channel_of)
            # their error groups' messages show them gone; the outage's counts them
            self.engine.feed.publish(report.joined)
            return report
        finally:
            async with db.sessions() as s, s.begin():
                await s.run_sync(lambda ss: release_lease(ss, LEASE_KEY, holder))

    async def _check(
        self, s: Session, now: datetime, channel_of: Callable[[int], str | None] | None
    ) -> WatchReport:
        report = await OutageRule(self.threshold, self.engine.policy).check(s, now)
        for iid, new in report.tell:
            await self._tell(s, iid, channel_of(iid) if channel_of else None, now, new=new)
        return report

    async def _tell(self, s: Session, iid: int, channel: str | None, now: datetime, *, new: bool) -> None:
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


async def load_outage_notice(s: Session, integration_id: int) -> OutageNotice | None:
    """The facts of an integration's outage message, or ``None`` when none was announced."""
    found = await outages.outage_of_integration(s, integration_id)
    if found is None or found[0].since is None:
        return None
    o, name, kind = found
    sent, failed, still = (
        await outages.outcomes_since(s, integration_id, o.recovered_at) if o.recovered_at else (0, 0, 0)
    )
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
        sent=sent,
        failed=failed,
        still_waiting=still,
    )
