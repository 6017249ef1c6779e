"""Outage watch: one message per outage, updated in place, a recovery update, no per-item noise.

The test clock stands still unless a test moves it; each simulated minute runs
the worker, the watch and the outbox once, the way the scheduler would.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from bot.config import SlackConfig
from bot.ops.facts import OutageNotice
from bot.ops.messages import duration, outage_message
from bot.ops.scheduler import Scheduler, SchedulerConfig, Sweeps
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from storage.migrate import upgrade
from storage.models import Outage, Posting, SlackMessage
from sync.admin import set_paused
from sync.config import RetryConfig
from sync.outage import fold
from tests.slack_harness import ALICE, CHANNEL, USERGROUP, SlackHarness, slack_harness
from tests.support import FakeClock, bill, make_config
from tests.test_slack_blocks import checked, snapshot

AT = datetime(2026, 11, 22, 10, 2, tzinfo=UTC)


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    """Worker, watch and outbox driven by the test; a posting may try 6 times before giving up."""
    config = make_config(
        slack=SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP),
        retry=RetryConfig(base_seconds=30, max_seconds=600, max_attempts=6),
    )
    async with slack_harness(db_url, clock, config=config, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        h.runtime.engine.connector("books-dk")  # the sandbox ledger exists from here on
        yield h


def sweeps_of(h: SlackHarness) -> Sweeps:
    assert h.runtime.scheduler is not None
    return h.runtime.scheduler.sweeps


async def minute(h: SlackHarness) -> None:
    """One simulated minute: the worker retries what is due, the watch looks, Slack hears."""
    h.clock.advance(60)
    await h.runtime.worker.run_until_idle()
    await sweeps_of(h).outage_watch()
    await h.deliver(within=30)


async def count(h: SlackHarness, *where: object) -> int:
    async with h.runtime.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Posting).where(*where)) or 0)


async def ingest_bills(h: SlackHarness, prefix: str, n: int) -> None:
    for start in range(0, n, 250):
        await h.ingest(*(bill(f"{prefix}-{i}") for i in range(start, min(n, start + 250))))


async def test_30_minute_outage_with_500_postings_makes_one_message_and_no_duplicates(
    slack: SlackHarness,
    sandbox_books: SandboxBooks,
) -> None:
    ledger = sandbox_books["books-dk"]
    ledger.switches.outage = True
    await ingest_bills(slack, "O", 500)
    await slack.runtime.worker.run_until_idle()
    for m in range(1, 31):
        if m == 20:  # documents keep arriving during the outage: the count follows
            await ingest_bills(slack, "late", 20)
        await minute(slack)
        posts = slack.fake.posts()
        assert len(posts) == (0 if m < 10 else 1), f"minute {m}: {len(posts)} posts"
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    assert post.args["text"].startswith(
        "The sandbox ledger is unreachable since 10:00 UTC, 500 items waiting, retrying every"
    )
    shown = slack.fake.messages[ts]["text"]
    assert "520 items waiting" in shown  # updated in place
    assert slack.fake.of("chat.update", ts=ts)
    async with slack.runtime.db.sessions() as s:
        kinds = set((await s.scalars(select(SlackMessage.subject_type))).all())
        head_attempts = await s.scalar(select(func.max(Posting.attempts)))
    assert kinds == {"outage"}  # no per-item (or group) message was even queued
    # Past the attempt limit (6) during the outage, yet nobody gave up: the ledger is at fault.
    assert head_attempts is not None and head_attempts >= 6
    assert await count(slack, Posting.state == "failed") == 0

    ledger.switches.outage = False
    for _ in range(15):
        await minute(slack)
        if await count(slack, Posting.state == "synced") == 520:
            break
    await minute(slack)
    assert await count(slack, Posting.state == "synced") == 520
    assert len(slack.fake.posts()) == 1
    assert slack.fake.messages[ts]["text"].startswith("The sandbox ledger reachable again")
    assert "The 520 items that waited went through: 520 sent, 0 failed." in slack.fake.text_of(ts)
    keys = [v.reference_key for v in ledger.vouchers.values()]
    assert len(keys) == 520 and len(set(keys)) == 520  # no duplicate voucher


async def test_a_short_hiccup_is_not_an_outage(slack: SlackHarness, sandbox_books: SandboxBooks) -> None:
    ledger = sandbox_books["books-dk"]
    ledger.switches.outage = True
    await slack.ingest(bill("H-1"), bill("H-2"))
    await slack.runtime.worker.run_until_idle()
    for _ in range(5):
        await minute(slack)
    ledger.switches.outage = False
    for _ in range(12):
        await minute(slack)
    assert slack.fake.posts() == []
    assert await count(slack, Posting.state == "synced") == 2
    async with slack.runtime.db.sessions() as s:
        [row] = (await s.scalars(select(Outage))).all()
    assert row.failing_since is None and row.since is None


async def test_a_new_outage_gets_a_new_message_and_the_old_one_stays_as_history(
    slack: SlackHarness, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    ledger = sandbox_books["books-dk"]
    for round_ in range(2):
        ledger.switches.outage = True
        await slack.ingest(bill(f"R-{round_}"))
        await slack.runtime.worker.run_until_idle()
        for _ in range(11):
            await minute(slack)
        ledger.switches.outage = False
        for _ in range(12):
            await minute(slack)
    posts = slack.fake.posts()
    assert len(posts) == 2
    for p in posts:
        assert slack.fake.messages[slack.fake.ts_of(p)]["text"].startswith(
            "The sandbox ledger reachable again"
        )


async def test_replicas_watching_at_once_announce_one_outage(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].switches.outage = True
    await slack.ingest(bill("W-1"))
    await slack.runtime.worker.run_until_idle()
    slack.clock.advance(11 * 60)
    here = sweeps_of(slack)
    other = Sweeps(slack.runtime.engine, here.config, channel_of=here.channel_of)
    results = await asyncio.gather(here.outage_watch(), other.outage_watch(), here.outage_watch())
    assert "books-dk unreachable" in results
    await slack.deliver()
    assert len(slack.fake.posts()) == 1
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(SlackMessage)) == 1


async def test_paused_integration_is_not_announced(slack: SlackHarness, sandbox_books: SandboxBooks) -> None:
    sandbox_books["books-dk"].switches.outage = True
    await slack.ingest(bill("P-1"))
    await slack.runtime.worker.run_until_idle()
    await set_paused(slack.runtime.engine, "books-dk", True, ALICE)
    for _ in range(12):
        await minute(slack)
    assert slack.fake.posts() == []


async def test_scheduler_runs_the_watch_on_its_configured_interval(runtime: Runtime) -> None:
    sweeps = Sweeps(runtime.engine, SchedulerConfig(outage_seconds=45, outage_minutes=5))
    trigger, _, description = Scheduler(sweeps).jobs["outage_watch"]
    assert trigger.interval == timedelta(seconds=45)
    assert "5 min" in description
    assert SchedulerConfig().outage_seconds == 60 and SchedulerConfig().outage_minutes == 10


def test_outage_message_while_down_and_after() -> None:
    down = OutageNotice(
        integration="books-dk",
        kind="economic",
        since=AT,
        waiting=124,
        retry_seconds=600,
        next_try_at=AT + timedelta(minutes=40),
        last_seen=AT + timedelta(minutes=30),
        error_code="unreachable",
        last_error="Could not connect to the ledger (connection refused).",
    )
    body = checked(outage_message(down))
    assert body.text == (
        "e-conomic is unreachable since 10:02 UTC, 124 items waiting, retrying every 10 min (books-dk)"
    )
    snapshot("outage_down", body)
    back = OutageNotice(**{**down.__dict__, "recovered_at": AT + timedelta(minutes=32), "sent": 124})
    body = checked(outage_message(back))
    assert body.text.startswith("e-conomic reachable again (books-dk)")
    assert "The 124 items that waited went through: 124 sent, 0 failed." in str(body.blocks)
    snapshot("outage_recovered", body)
    assert [duration(s) for s in (45, 600, 5400, 3 * 86400)] == ["45 s", "10 min", "1 h 30 min", "3 d"]


def test_a_give_up_is_known_by_structure_not_by_its_text() -> None:
    """The worker giving up keeps the outage; a ledger's refusal worded alike ends it."""
    since = AT - timedelta(minutes=30)
    row = Outage(integration_id=1, checked_attempt_id=0, waiting=3, since=since, failing_since=since)

    def attempt(id_: int, *, gave_up: bool, message: str) -> SimpleNamespace:
        return SimpleNamespace(
            id=id_,
            outcome="failed",
            started_at=AT,
            finished_at=AT,
            error_code="x",
            message=message,
            gave_up=gave_up,
        )

    assert not fold(row, attempt(1, gave_up=True, message="The ledger timed out."))
    assert row.recovered_at is None and row.last_error == "The ledger timed out."
    assert fold(row, attempt(2, gave_up=False, message="Gave up after a check: account 2800 is closed."))
    assert row.recovered_at == AT and row.failing_since is None


def test_give_ups_logged_before_the_gave_up_column_still_count_as_unanswered(tmp_path: Path) -> None:
    """Upgrading reads the old attempts' wording once: an outage in progress stays one."""
    path = tmp_path / "old.db"
    upgrade(f"sqlite+aiosqlite:///{path}", "0007")
    rows = [
        (1, "failed", "Gave up after 6 attempts. Last error: The ledger timed out."),
        (2, "failed", "gave up after a check"),  # the ledger's words, not the worker's
        (3, "retrying", "Gave up after nothing"),
    ]
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO attempts (id, posting_id, started_at, trigger, operation, outcome, message) "
            "VALUES (?, 1, '2026-11-22 10:00:00', 'auto', 'create', ?, ?)",
            rows,
        )
    upgrade(f"sqlite+aiosqlite:///{path}")
    with sqlite3.connect(path) as conn:
        marked = conn.execute("SELECT id, gave_up FROM attempts ORDER BY id").fetchall()
    assert marked == [(1, 1), (2, 0), (3, 0)]


@pytest.fixture
async def quick_to_give_up(
    db_url: str, clock: FakeClock, sandbox_books: SandboxBooks
) -> AsyncIterator[SlackHarness]:
    """A posting gives up after 3 tries (about 2 minutes): long before an outage is announced."""
    config = make_config(
        slack=SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP),
        retry=RetryConfig(base_seconds=30, max_seconds=600, max_attempts=3),
    )
    async with slack_harness(db_url, clock, config=config, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        h.runtime.engine.connector("books-dk")
        yield h


async def test_postings_that_gave_up_before_the_outage_wait_with_it_and_are_counted_after(
    quick_to_give_up: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    slack = quick_to_give_up
    ledger = sandbox_books["books-dk"]
    ledger.switches.outage = True
    await ingest_bills(slack, "S", 6)
    await slack.runtime.worker.run_until_idle()
    for _ in range(8):
        await minute(slack)
    stranded = await count(slack, Posting.state == "failed")
    assert stranded >= 2  # given up into an error group before the watch saw an outage
    for _ in range(4):
        await minute(slack)
    assert await count(slack, Posting.state == "failed") == 0  # they wait with the outage now
    posts = {p.args["text"].split(",")[0]: slack.fake.ts_of(p) for p in slack.fake.posts()}
    outage_ts = posts["The sandbox ledger is unreachable since 10:00 UTC"]
    for ts in posts.values():
        assert "ledgerops.resync_group" not in slack.fake.action_ids(ts)  # no "Resync all" beside it
    for _ in range(25):
        await minute(slack)  # the ledger stays out past every give-up limit: nobody gives up
    assert await count(slack, Posting.state == "failed") == 0

    ledger.switches.outage = False
    for _ in range(15):
        await minute(slack)
    assert await count(slack, Posting.state == "synced") == 6
    assert "The 6 items that waited went through: 6 sent, 0 failed." in slack.fake.text_of(outage_ts)
