"""Periodic sweeps on APScheduler's AsyncIOScheduler (in-memory job store).

All state lives in the database, so every job is safe when several replicas run
it at once: sweeps are guarded single-statement updates, and a job that must
happen once (the daily digest) claims a row keyed by its day first.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from storage.models import Posting
from storage.queries import recover_stuck, release_due_retries, release_quota_blocked
from storage.states import PostingState
from sync.engine import Engine

log = logging.getLogger(__name__)


class SchedulerConfig(BaseModel):
    """``[scheduler]`` in ledgerops.toml: how often each sweep runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_seconds: float = Field(default=15, gt=0)
    stuck_seconds: float = Field(default=30, gt=0)
    give_up_after_hours: float = Field(default=72, gt=0)
    give_up_seconds: float = Field(default=300, gt=0)


@dataclass
class JobStatus:
    """What a job last did, for ``/ledger queue`` and the App Home."""

    name: str
    description: str
    last_run: datetime | None = None
    last_result: str = "not run yet"
    failures: int = 0
    next_run: datetime | None = None


JobFn = Callable[[], Awaitable[str]]


@dataclass
class Sweeps:
    """The jobs themselves, callable directly (tests drive them with a fake clock)."""

    engine: Engine
    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    quota_released: int = 0

    async def retry_due(self) -> str:
        """``retrying`` postings whose backoff passed go back to the queue."""
        now = self.engine.clock()
        released = await self.engine.db.run(lambda conn: release_due_retries(conn, now))
        if released:
            self.engine.wake()
        return f"{released} back in the queue"

    async def recover_stuck(self) -> str:
        """``in_flight`` past its lease (a worker died) -> queued again, look-up first."""
        now = self.engine.clock()
        recovered = await self.engine.db.run(lambda conn: recover_stuck(conn, now))
        if recovered:
            log.warning("recovered stuck postings", extra={"postings": recovered})
            self.engine.wake()
        return f"{len(recovered)} recovered"

    async def quota_reset(self) -> str:
        """First of the month: postings held back by the booking quota resume."""
        now = self.engine.clock()
        released = await self.engine.db.run(lambda conn: release_quota_blocked(conn, now))
        if released:
            self.engine.wake()
        self.quota_released = released
        return f"{released} resumed after the monthly quota reset"

    async def give_up_old(self) -> str:
        """Postings retrying for longer than the limit need a person."""
        now = self.engine.clock()
        cutoff = now - timedelta(hours=self.config.give_up_after_hours)
        async with self.engine.db.sessions() as s, s.begin():
            ids = list((await s.scalars(select(Posting.id).where(
                Posting.state == PostingState.RETRYING, Posting.queued_at < cutoff))).all())
            if ids:
                await s.execute(
                    update(Posting)
                    .where(Posting.id.in_(ids), Posting.state == PostingState.RETRYING)
                    .values(state=PostingState.FAILED, updated_at=now,
                            last_error=Posting.last_error.concat(
                                f" (gave up: still failing after "
                                f"{self.config.give_up_after_hours:g} hours)"))
                    .execution_options(synchronize_session=False))
        if ids:
            self.engine.announce(ids)
        return f"{len(ids)} given up"


class Scheduler:
    """Starts the sweeps inside the running event loop and keeps their status."""

    def __init__(self, sweeps: Sweeps, extra: dict[str, tuple[Any, JobFn, str]] | None = None):
        self.sweeps = sweeps
        cfg = sweeps.config
        self.jobs: dict[str, tuple[Any, JobFn, str]] = {
            "retry_due": (IntervalTrigger(seconds=cfg.retry_seconds), sweeps.retry_due,
                          "retry due postings"),
            "recover_stuck": (IntervalTrigger(seconds=cfg.stuck_seconds), sweeps.recover_stuck,
                              "recover postings a crashed worker left in flight"),
            "give_up_old": (IntervalTrigger(seconds=cfg.give_up_seconds), sweeps.give_up_old,
                            f"give up after {cfg.give_up_after_hours:g} hours of retrying"),
            "quota_reset": (CronTrigger(day=1, hour=0, minute=5, timezone="UTC"),
                            sweeps.quota_reset, "resume quota-blocked postings each month"),
        }
        self.jobs.update(extra or {})
        self.status = {name: JobStatus(name, desc) for name, (_, _, desc) in self.jobs.items()}
        self._aps: AsyncIOScheduler | None = None
        #: told after every run (metrics)
        self.listeners: list[Callable[[str, JobStatus], None]] = []

    def start(self) -> None:
        """Start inside the running loop (APScheduler takes the current loop)."""
        self._aps = AsyncIOScheduler(timezone="UTC")
        for name, (trigger, fn, _) in self.jobs.items():
            self._aps.add_job(self.run_job, trigger, args=[name, fn], id=name,
                              max_instances=1, coalesce=True, misfire_grace_time=60)
        self._aps.start()

    async def run_job(self, name: str, fn: JobFn) -> None:
        """Run one job, recording its outcome (a failing job is logged, never raised)."""
        status = self.status[name]
        status.last_run = self.sweeps.engine.clock()
        try:
            status.last_result = await fn()
        except Exception as exc:
            status.failures += 1
            status.last_result = f"failed: {type(exc).__name__}"
            log.exception("scheduled job failed", extra={"job": name})
        for listener in self.listeners:
            listener(name, status)

    def overview(self) -> list[JobStatus]:
        """Every job with what it last did and when it runs next."""
        if self._aps is not None:
            for name in self.jobs:
                job = self._aps.get_job(name)
                self.status[name].next_run = job.next_run_time if job else None
        return list(self.status.values())

    def shutdown(self) -> None:
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)


def daily_at(hh_mm: str, timezone: str | None = None) -> CronTrigger:
    """A cron trigger for ``HH:MM`` every day (server-local time unless a zone is given)."""
    hour, minute = (int(p) for p in hh_mm.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=timezone)
