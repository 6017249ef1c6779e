"""Scheduled sweeps, driven directly with a fake clock (no test waits for a timer)."""

from __future__ import annotations

from sqlalchemy import select

from bot.ops.scheduler import Scheduler, SchedulerConfig, Sweeps
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from storage.models import Posting
from tests.support import FakeClock, bill
from tests.test_engine_rules import CrashAfterLedger, ingest, posting, view


async def test_stuck_posting_is_recovered_once_and_synced_without_duplicate(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("S-1"))
    crashing = CrashAfterLedger(runtime.engine)
    CrashAfterLedger.crashed = False
    try:
        await crashing._drain("books-dk")
    except SystemError:
        pass
    sweeps = Sweeps(runtime.engine)
    assert await sweeps.recover_stuck() == "0 recovered"  # lease not expired yet
    clock.advance(runtime.config.worker.lease_seconds + 1)
    assert await sweeps.recover_stuck() == "1 recovered"
    assert await sweeps.recover_stuck() == "0 recovered"
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "S-1"))["state"] == "synced"
    assert len(sandbox_books["books-dk"].vouchers) == 1


async def test_retry_sweep_releases_only_due_postings(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("S-2"))
    sandbox_books.open("books-dk", {}).switches.fail_next = 1
    await runtime.worker.run_until_idle()
    sweeps = Sweeps(runtime.engine)
    assert await sweeps.retry_due() == "0 back in the queue"
    clock.advance(runtime.engine.policy.bounds(1)[1] + 1)
    assert await sweeps.retry_due() == "1 back in the queue"
    async with runtime.db.sessions() as s:
        assert await s.scalar(select(Posting.state)) == "pending"


async def test_give_up_after_age_needs_a_person(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("S-3"))
    sandbox_books.open("books-dk", {}).switches.outage = True
    await runtime.worker.run_until_idle()
    sweeps = Sweeps(runtime.engine, SchedulerConfig(give_up_after_hours=24))
    assert await sweeps.give_up_old() == "0 given up"
    clock.advance(25 * 3600)
    assert await sweeps.give_up_old() == "1 given up"
    p = posting(await view(runtime, "S-3"))
    assert p["state"] == "failed" and "gave up" in p["last_error"]


async def test_scheduler_starts_each_job_with_its_interval_and_reports_status(runtime: Runtime) -> None:
    scheduler = Scheduler(Sweeps(runtime.engine, SchedulerConfig(retry_seconds=15)))
    scheduler.start()
    try:
        jobs = {j.name: j for j in scheduler.overview()}
        assert set(jobs) == {
            "retry_due",
            "recover_stuck",
            "give_up_old",
            "quota_reset",
            "outage_watch",
        }  # no digest without Slack (see test_digest.py)
        assert all(j.next_run is not None for j in jobs.values())
        await scheduler.run_job("retry_due", scheduler.sweeps.retry_due)
        assert scheduler.status["retry_due"].last_result == "0 back in the queue"

        async def broken() -> str:
            raise RuntimeError("boom")

        await scheduler.run_job("retry_due", broken)
        assert scheduler.status["retry_due"].failures == 1
    finally:
        scheduler.shutdown()


async def test_monthly_quota_holds_back_and_the_reset_resumes_exactly_those(
    make_runtime: object, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    from tests.support import make_config, sandbox_integration

    rt: Runtime = await make_runtime(  # type: ignore[operator]
        make_config(sandbox_integration(monthly_quota=2))
    )
    await ingest(rt, bill("Q-1"), bill("Q-2"), bill("Q-3"), bill("Q-4", category="Travel"))
    await rt.worker.run_until_idle()
    states = {d: posting(await view(rt, d))["state"] for d in ("Q-1", "Q-2", "Q-3", "Q-4")}
    assert states == {"Q-1": "synced", "Q-2": "synced", "Q-3": "waiting", "Q-4": "failed"}
    assert "quota" in posting(await view(rt, "Q-3"))["last_error"]
    sweeps = Sweeps(rt.engine)
    clock.advance(10 * 24 * 3600)  # 2026-12-02: a new month
    assert await sweeps.quota_reset() == "1 resumed after the monthly quota reset"
    await rt.worker.run_until_idle()
    assert posting(await view(rt, "Q-3"))["state"] == "synced"
    assert posting(await view(rt, "Q-4"))["state"] == "failed"
    assert len(sandbox_books["books-dk"].vouchers) == 3
