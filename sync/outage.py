"""Outage rule: when a ledger is out (only transient failures for N minutes) and when it is back.

The watch folds the attempt log, newest part only, into one ``outages`` row per
integration: when the ledger last answered, and the first transient failure
since (``failing_since``). Once that streak is ``threshold`` old and something
still waits, the outage is announced (``since``); an attempt the ledger answers
ends it (``recovered_at``). Postings that fail because the ledger is out belong to
the outage: while it is announced neither the worker nor the age limit gives them
up, those that gave up before it was announced wait with it again (out of their
error group), and once it ends its message counts what went through ("70 sent,
0 failed"). So the channel hears about it once (``bot/ops/outage.py`` tells it).

Folding the same attempts twice gives the same row (the watermark
``checked_attempt_id`` only moves forward), so replicas may take turns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage.db import Session
from storage.models import Integration, Outage
from storage.queries import figures, outages
from storage.queries.groups import close_settled_groups
from storage.states import Outcome, PostingState
from sync.changes import Change
from sync.policy import RetryPolicy

log = logging.getLogger(__name__)

#: attempts read per query, and queries per run (a first run on a big log catches up in steps)
BATCH = 20_000
MAX_BATCHES = 10
#: a new row starts this many attempts back, not at the beginning of time
LOOKBACK = 20_000
#: attempts younger than this are left for the next run: on PostgreSQL an attempt's id is
#: taken before its transaction commits, so a lower id may still appear a moment later, and
#: the watermark must not pass it
SETTLE = timedelta(seconds=10)
WAITING = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING)
TRANSIENT = (Outcome.RETRYING, Outcome.UNCERTAIN)
#: the ledger answered: it is reachable (a refusal without a call, e.g. quota, says nothing)
ANSWERED = (Outcome.SYNCED, Outcome.BOOKED, Outcome.FAILED)
#: how long after an outage its message keeps counting what went through
FOLLOW_RECOVERY = timedelta(hours=1)


@dataclass
class WatchReport:
    """What one run found (the scheduler shows it in ``/ledger queue``)."""

    announced: list[str] = field(default_factory=list)
    ongoing: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    skipped: bool = False
    #: the integrations whose channel is told, in order: ``(integration id, a new outage)``
    tell: list[tuple[int, bool]] = field(default_factory=list)
    #: postings that had given up and now wait with the outage (for the change feed)
    joined: list[Change] = field(default_factory=list)

    def __str__(self) -> str:
        if self.skipped:
            return "another replica is watching"
        parts = [f"{n} unreachable" for n in self.announced + self.ongoing]
        parts += [f"{n} back" for n in self.recovered]
        return ", ".join(parts) or "all reachable"


def is_transient(attempt: Any) -> bool:
    """The ledger did not answer this attempt: a retry, an unknown outcome, or a transient
    failure the worker gave up on after too many attempts (``gave_up``, by structure)."""
    return attempt.outcome in TRANSIENT or (attempt.outcome == Outcome.FAILED and bool(attempt.gave_up))


def fold(row: Outage, attempt: Any) -> bool:
    """Take one attempt into the row; ``True`` when it ended an announced outage."""
    if attempt.id <= row.checked_attempt_id:
        return False  # folded before (another replica, or an earlier batch)
    ended = False
    at = attempt.finished_at or attempt.started_at
    if is_transient(attempt):
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


def ends_outage(row: Outage, attempt: Any) -> bool:
    """The ledger answered ``attempt`` while the row's outage is announced."""
    return (
        row.since is not None
        and row.recovered_at is None
        and attempt.outcome in ANSWERED
        and not is_transient(attempt)
    )


@dataclass(frozen=True)
class OutageRule:
    """When a streak of transient failures is an outage, and the backoff its message shows."""

    threshold: timedelta
    policy: RetryPolicy

    async def check(self, s: Session, now: datetime) -> WatchReport:
        """Fold new attempts, then decide per integration: announced, ongoing, recovered."""
        integrations = await outages.integrations_by_id(s)
        rows = await _outage_rows(s, integrations, now)
        ended = await fold_new_attempts(s, rows, now - SETTLE)
        waiting = await figures.postings_per_integration(s, WAITING)
        retrying = await outages.retrying_by_integration(s)
        report = WatchReport()
        for iid, row in rows.items():
            integ = integrations.get(iid)
            if integ is None:
                continue
            if iid in ended:
                report.recovered.append(integ.name)
                report.tell.append((iid, False))
                log.info("ledger reachable again", extra={"integration": integ.name})
            elif row.since is not None and row.recovered_at is None:
                joined = await self.gather(s, row, now, report)
                if self.refresh(row, int(waiting.get(iid, 0)) + joined, retrying.get(iid)):
                    report.tell.append((iid, False))
                report.ongoing.append(integ.name)
            elif (since := self._out_since(row, integ, now)) is not None and waiting.get(iid, 0):
                row.since, row.recovered_at = since, None
                joined = await self.gather(s, row, now, report)
                self.refresh(row, int(waiting[iid]) + joined, retrying.get(iid))
                report.announced.append(integ.name)
                report.tell.append((iid, True))
                log.warning(
                    "ledger unreachable",
                    extra={"integration": integ.name, "since": since.isoformat(), "waiting": row.waiting},
                )
            elif row.recovered_at is not None and now - row.recovered_at <= FOLLOW_RECOVERY:
                report.tell.append((iid, False))  # its message counts what went through
            row.updated_at = now
        return report

    async def gather(self, s: Session, row: Outage, now: datetime, report: WatchReport) -> int:
        """Postings of the integration that gave up because the ledger did not answer wait
        with the outage again (retried when it is due, never given up while it lasts)."""
        found = await outages.gave_up_unreachable(s, row.integration_id)
        if not found:
            return 0
        next_try = max(row.next_try_at or now, now)
        moved = await outages.wait_with_outage(s, [r.id for r in found], next_try, now)
        groups = sorted({int(r.error_group_id) for r in found if r.error_group_id is not None})
        await s.run_sync(lambda ss: close_settled_groups(ss, groups))
        report.joined.extend(
            Change(r.id, r.document_id, PostingState.RETRYING, None, r.error_group_id) for r in found
        )
        return moved

    def _out_since(self, row: Outage, integ: Integration, now: datetime) -> datetime | None:
        """Since when the ledger is out: only transient failures for ``threshold``, not paused."""
        since = row.failing_since
        return since if since is not None and not integ.paused and now - since >= self.threshold else None

    def refresh(self, row: Outage, waiting: int, retrying: tuple[int, datetime | None] | None) -> bool:
        """New counts for an ongoing outage; ``True`` when the message would change."""
        retry_seconds, next_try = row.retry_seconds, row.next_try_at
        if retrying is not None:
            attempts, next_try = retrying
            policy = self.policy
            retry_seconds = round(min(policy.max_seconds, policy.base_seconds * 2 ** max(0, attempts - 1)))
        changed = (waiting, retry_seconds, next_try) != (row.waiting, row.retry_seconds, row.next_try_at)
        row.waiting, row.retry_seconds, row.next_try_at = waiting, retry_seconds, next_try
        return changed


async def _outage_rows(s: Session, integrations: dict[int, Integration], now: datetime) -> dict[int, Outage]:
    """The watch's row of every integration; a new one starts ``LOOKBACK`` attempts back."""
    rows = await outages.outage_rows(s)
    missing = [iid for iid in integrations if iid not in rows]
    if missing:
        top = await outages.newest_attempt_id(s)
        for iid in missing:
            rows[iid] = Outage(
                integration_id=iid, checked_attempt_id=max(0, top - LOOKBACK), waiting=0, updated_at=now
            )
            s.add(rows[iid])
    return rows


async def fold_new_attempts(s: Session, rows: dict[int, Outage], horizon: datetime) -> set[int]:
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
                if row is not None and ends_outage(row, a):
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
