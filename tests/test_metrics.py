"""``GET /metrics`` exposes every family an operator scrapes, with the figures of now."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.slack_harness import Planned, SlackHarness, slack_harness
from tests.support import FakeClock, bill


@pytest.fixture
async def slack(db_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock) as h:
        await h.notifier.reconcile()
        yield h


async def scrape(h: SlackHarness) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    """Family name -> {(sample name, sorted labels): value}."""
    response = await h.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        f.name: {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
        for f in text_string_to_metric_families(response.text)
    }


async def test_metrics_expose_every_family(slack: SlackHarness, clock: FakeClock) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=429, retry_after=2))
    await slack.ingest(bill("M-1"), bill("M-2", category="Travel"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()  # 429 first, then the post
    await slack.ingest(bill("M-3"))  # queued, not sent yet
    clock.advance(30)
    scheduler = slack.runtime.scheduler
    assert scheduler is not None
    await scheduler.run_job("retry_due", scheduler.sweeps.retry_due)

    async def broken() -> str:
        raise RuntimeError("boom")

    await scheduler.run_job("give_up_old", broken)

    m = await scrape(slack)
    dk = ("integration", "books-dk")
    postings = m["ledgerops_postings"]
    assert postings[("ledgerops_postings", (dk, ("state", "synced")))] == 1
    assert postings[("ledgerops_postings", (dk, ("state", "failed")))] == 1
    assert postings[("ledgerops_postings", (dk, ("state", "pending")))] == 1
    attempts = m["ledgerops_attempts"]
    assert attempts[("ledgerops_attempts_total", (dk, ("outcome", "synced")))] == 1
    assert attempts[("ledgerops_attempts_total", (dk, ("outcome", "failed")))] == 1
    duration = m["ledgerops_sync_duration_seconds"]
    assert duration[("ledgerops_sync_duration_seconds_count", (dk, ("operation", "create")))] == 1
    assert any(name.endswith("_bucket") for name, _ in duration)
    assert m["ledgerops_queue_age_seconds"][("ledgerops_queue_age_seconds", (("company", "books-dk"),))] == 30
    calls = m["ledgerops_slack_api_calls"]
    post = ("method", "chat.postMessage")
    assert calls[("ledgerops_slack_api_calls_total", (post, ("result", "rate_limited")))] == 1
    assert calls[("ledgerops_slack_api_calls_total", (post, ("result", "ok")))] == 1
    assert m["ledgerops_slack_rate_limited"][("ledgerops_slack_rate_limited_total", (post,))] == 1
    jobs = m["ledgerops_scheduler_job_runs"]
    assert jobs[("ledgerops_scheduler_job_runs_total", (("job", "retry_due"), ("result", "ok")))] == 1
    assert jobs[("ledgerops_scheduler_job_runs_total", (("job", "give_up_old"), ("result", "failed")))] == 1
