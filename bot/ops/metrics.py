"""Prometheus metrics: counts read from the database at scrape time, durations observed live.

State lives in the database, so gauges (postings by state, queue age) and the
attempt totals are read when ``/metrics`` is scraped; every replica reports the
same database-wide figures. Durations, Slack calls and scheduler runs are this
process's own observations.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.outbox.delivery import CallResult, Delivery
from storage.db import Database
from storage.queries import figures
from storage.states import PostingState
from sync.changes import AttemptObserved

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class DatabaseFigures(Collector):
    """Figures read from the database by :meth:`Metrics.refresh` before each scrape."""

    def __init__(self) -> None:
        self.postings: dict[tuple[str, str], int] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        self.queue_age: dict[str, float] = {}

    def collect(self) -> Iterable[Metric]:
        postings = GaugeMetricFamily(
            "ledgerops_postings", "Postings by integration and state", labels=["integration", "state"]
        )
        for (integration, state), n in sorted(self.postings.items()):
            postings.add_metric([integration, state], n)
        yield postings
        attempts = CounterMetricFamily(
            "ledgerops_attempts", "Attempts by integration and outcome", labels=["integration", "outcome"]
        )
        for (integration, outcome), n in sorted(self.attempts.items()):
            attempts.add_metric([integration, outcome], n)
        yield attempts
        age = GaugeMetricFamily(
            "ledgerops_queue_age_seconds", "Age of the oldest queued posting per company", labels=["company"]
        )
        for company, seconds in sorted(self.queue_age.items()):
            age.add_metric([company], seconds)
        yield age


class Metrics:
    """The registry of one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.figures = DatabaseFigures()
        self.registry.register(self.figures)
        self.sync_duration = Histogram(
            "ledgerops_sync_duration_seconds",
            "Time of one attempt against the ledger",
            ["integration", "operation"],
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.slack_calls = Counter(
            "ledgerops_slack_api_calls", "Slack Web API calls", ["method", "result"], registry=self.registry
        )
        self.slack_rate_limited = Counter(
            "ledgerops_slack_rate_limited", "Slack answers 429", ["method"], registry=self.registry
        )
        self.job_runs = Counter(
            "ledgerops_scheduler_job_runs",
            "Scheduled job runs by result (ok / failed)",
            ["job", "result"],
            registry=self.registry,
        )

    def observe_attempt(self, seen: AttemptObserved) -> None:
        self.sync_duration.labels(seen.integration, seen.operation).observe(seen.seconds)

    def observe_slack_call(self, method: str, result: CallResult) -> None:
        """One outbox Web API call: counted by method and outcome; a 429 also on its own."""
        self.slack_calls.labels(method, result.delivery.value).inc()
        if result.delivery is Delivery.RATE_LIMITED:
            self.slack_rate_limited.labels(method).inc()

    def observe_job(self, job: str, status: Any) -> None:
        """A scheduled job ran (``status`` is the scheduler's ``JobStatus``)."""
        failed = str(status.last_result).startswith("failed")
        self.job_runs.labels(job, "failed" if failed else "ok").inc()

    async def refresh(self, db: Database, now: datetime) -> None:
        """Read the database-wide figures (called by the ``/metrics`` route)."""
        async with db.sessions() as s:
            self.figures.postings = await figures.postings_by_integration_and_state(s)
            self.figures.attempts = await figures.attempts_by_integration_and_outcome(s)
            queued = await figures.oldest_queued_by_company(
                s, [PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING]
            )
            self.figures.queue_age = {c: max(0.0, (now - t).total_seconds()) for c, t in queued.items()}

    def render(self) -> bytes:
        return generate_latest(self.registry)
