"""Periodic sweeps on APScheduler's AsyncIOScheduler (in-memory job store).

All state lives in the database, so every job is safe when several replicas run
it at once: sweeps are guarded single-statement updates, the outage watch holds a
short lease, and a job that must happen once (the daily digest, the monthly
quota reset) claims a ``job_runs`` row keyed by its day or month first.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel, ConfigDict, Field

from bot.ops.digest import post_digest, reset_quota
from bot.ops.outage import OutageWatch
from storage.queries.postings import recover_stuck, release_due_retries
from sync.engine import Engine
from sync.give_up import give_up_old

log = logging.getLogger(__name__)


class SchedulerConfig(BaseModel):
    """``[scheduler]`` in ledgerops.toml: how often each sweep runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_seconds: float = Field(default=15, gt=0)
    stuck_seconds: float = Field(default=30, gt=0)
    give_up_after_hours: float = Field(default=72, gt=0)
    give_up_seconds: float = Field(default=300, gt=0)
    #: how often the outage watch looks, and how long only transient failures make an outage
    outage_seconds: float = Field(default=60, gt=0)
    outage_minutes: float = Field(default=10, gt=0)


def holder_name() -> str:
    """Who holds a claim: host, process and a random part (two runtimes in one process differ)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
    #: ``HH:MM`` (server-local) of the daily digest; ``None``: no digest job
    digest_time: str | None = None
    #: where messages go: an integration's channel, the digest's channel (``None``: no Slack)
    channel_of: Callable[[int], str | None] | None = None
    digest_channel: str | None = None
    #: tells the Slack outbox that a job queued a message
    poke: Callable[[], None] | None = None
    holder: str = field(default_factory=holder_name)

    def __post_init__(self) -> None:
        self.watch = OutageWatch(
            self.engine,
            timedelta(minutes=self.config.outage_minutes),
            self.holder,
            lease=timedelta(seconds=max(60.0, 2 * self.config.outage_seconds)),
        )

    def _poke(self) -> None:
        if self.poke is not None:
            self.poke()

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
        """First of the month: postings held back by the booking quota resume (once across
        replicas), and the channel is told how many."""
        now = self.engine.clock()
        async with self.engine.db.sessions() as s, s.begin():
            released = await reset_quota(s, now, self.holder, self.digest_channel)
        if released is None:
            return "already reset this month"
        if released:
            self.engine.wake()
            self._poke()
        self.quota_released = released
        return f"{released} resumed after the monthly quota reset"

    async def outage_watch(self) -> str:
        """A ledger with only transient failures for ``outage_minutes``: one message."""
        report = await self.watch.run(self.channel_of)
        if report.announced or report.recovered or report.ongoing:
            self._poke()
        return str(report)

    async def digest(self) -> str:
        """The daily digest, posted once across replicas (the first to claim the day)."""
        now = self.engine.clock()
        async with self.engine.db.sessions() as s, s.begin():
            digest = await post_digest(s, now, self.holder, self.digest_channel)
        if digest is None:
            return "already posted today"
        self._poke()
        return f"digest of {digest.day} queued"

    async def give_up_old(self) -> str:
        """Postings retrying for longer than the limit need a person.

        The rule is ``sync/give_up.py``: each goes into one ``gave_up`` error group per
        cause, so Slack shows one message for many postings that gave up the same way.
        """
        given = await give_up_old(self.engine, self.config.give_up_after_hours)
        return f"{len(given)} given up"


class Scheduler:
    """Starts the sweeps inside the running event loop and keeps their status."""

    def __init__(self, sweeps: Sweeps, extra: dict[str, tuple[Any, JobFn, str]] | None = None):
        self.sweeps = sweeps
        cfg = sweeps.config
        self.jobs: dict[str, tuple[Any, JobFn, str]] = {
            "retry_due": (IntervalTrigger(seconds=cfg.retry_seconds), sweeps.retry_due, "retry due postings"),
            "recover_stuck": (
                IntervalTrigger(seconds=cfg.stuck_seconds),
                sweeps.recover_stuck,
                "recover postings a crashed worker left in flight",
            ),
            "give_up_old": (
                IntervalTrigger(seconds=cfg.give_up_seconds),
                sweeps.give_up_old,
                f"give up after {cfg.give_up_after_hours:g} hours of retrying",
            ),
            "quota_reset": (
                CronTrigger(day=1, hour=0, minute=5, timezone="UTC"),
                sweeps.quota_reset,
                "resume quota-blocked postings each month",
            ),
            "outage_watch": (
                IntervalTrigger(seconds=cfg.outage_seconds),
                sweeps.outage_watch,
                f"tell the channel once when a ledger is unreachable for {cfg.outage_minutes:g} min",
            ),
        }
        if sweeps.digest_time is not None:
            self.jobs["digest"] = (
                daily_at(sweeps.digest_time),
                sweeps.digest,
                f"daily digest at {sweeps.digest_time}",
            )
        self.jobs.update(extra or {})
        #: a job that must not be skipped when the process was busy or restarting at its time
        self.grace = {"digest": 3600, "quota_reset": 24 * 3600}
        self.status = {name: JobStatus(name, desc) for name, (_, _, desc) in self.jobs.items()}
        self._aps: AsyncIOScheduler | None = None
        #: told after every run (metrics)
        self.listeners: list[Callable[[str, JobStatus], None]] = []

    def start(self) -> None:
        """Start inside the running loop (APScheduler takes the current loop)."""
        self._aps = AsyncIOScheduler(timezone="UTC")
        for name, (trigger, fn, _) in self.jobs.items():
            self._aps.add_job(
                self.run_job,
                trigger,
                args=[name, fn],
                id=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=self.grace.get(name, 60),
            )
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
