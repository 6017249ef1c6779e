"""Jobs that happen once across replicas: the daily digest and the monthly quota notice.

Two runtimes share one database (SQLite and PostgreSQL) and one fake Slack, the
way two replicas would; both run the job at the same moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from app import build_runtime
from bot.config import ConfigFile, SlackConfig
from bot.ops.digest import local_day
from bot.ops.facts import Digest, IntegrationDay, OpenGroup
from bot.ops.messages import digest_message
from bot.ops.scheduler import Scheduler, Sweeps
from bot.runtime import Runtime
from sync.admin import set_paused
from tests.slack_harness import (
    ALICE,
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    USERGROUP,
    SlackHarness,
    slack_harness,
)
from tests.support import FakeClock, bill, make_config, make_env, sandbox_integration
from tests.test_slack_blocks import checked, snapshot

SLACK = SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP, digest_time="07:30")


def two_books(**dk: Any) -> ConfigFile:
    return make_config(sandbox_integration(**dk), sandbox_integration("books-se"), slack=SLACK)


@asynccontextmanager
async def two_replicas(
    db_url: str, clock: FakeClock, config: ConfigFile
) -> AsyncIterator[tuple[SlackHarness, Runtime]]:
    """A harness (with the fake Slack) and a second runtime on the same database and Slack."""
    async with slack_harness(db_url, clock, config=config) as h:
        env = make_env(
            db_url,
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=h.fake.url,
        )
        other = await build_runtime(env, config, migrate=False, clock=clock)
        try:
            yield h, other
        finally:
            await other.close()


@pytest.fixture
async def replicas(db_url: str, clock: FakeClock) -> AsyncIterator[tuple[SlackHarness, Runtime]]:
    async with two_replicas(db_url, clock, two_books()) as pair:
        yield pair


def sweeps(rt: Runtime) -> Sweeps:
    assert rt.scheduler is not None
    return rt.scheduler.sweeps


async def both_send(h: SlackHarness, other: Runtime) -> None:
    """Both replicas' outboxes send at once, then whatever is left goes out."""
    assert other.notifier is not None
    await asyncio.gather(h.notifier.flush(), other.notifier.flush())
    await h.deliver()


async def test_two_replicas_post_one_digest_a_day(
    replicas: tuple[SlackHarness, Runtime], clock: FakeClock
) -> None:
    h, other = replicas
    await h.ingest(
        bill("D-1"),
        bill("D-2"),
        bill("D-3"),
        bill("D-4", category="Travel"),
        bill("D-5", category="Travel"),
        bill("D-6", category="Meals"),
    )
    await h.runtime.worker.run_until_idle()
    await set_paused(h.runtime.engine, "books-se", True, ALICE)
    await h.ingest(bill("S-1", integration="books-se"), bill("S-2", integration="books-se"))
    await h.runtime.worker.run_until_idle()
    await h.deliver()
    before = len(h.fake.posts())

    day = local_day(clock.now)  # the server's own date (the digest runs on local time)
    results = await asyncio.gather(sweeps(h.runtime).digest(), sweeps(other).digest())
    assert sorted(results) == ["already posted today", f"digest of {day} queued"]
    await both_send(h, other)
    posts = h.fake.posts()[before:]
    assert len(posts) == 1
    digest = h.fake.text_of(h.fake.ts_of(posts[0]))
    for fact in (
        f"Daily digest · {day}",
        "*books-dk* (the sandbox ledger)",
        "3 synced · :red_circle: 3 failed · :hourglass_flowing_sand: 0 waiting",
        "*books-se* (the sandbox ledger) :double_vertical_bar: *paused*",
        "0 synced · :red_circle: 0 failed · :hourglass_flowing_sand: 2 waiting",
        "*2 bills:* The category 'Travel' has no account mapping",
        "*1 bill:* The category 'Meals'",
        "Paused: *books-se*",
    ):
        assert fact in digest, fact
    assert posts[0].args["text"] == (f"Daily digest {day}: 3 synced, 3 failed, 2 waiting; paused: books-se")

    # the same day again (a restart, a misfire): nothing more
    assert await sweeps(other).digest() == "already posted today"
    await both_send(h, other)
    assert len(h.fake.posts()) == before + 1

    # next morning: counts since the previous digest
    clock.advance(24 * 3600)
    await set_paused(h.runtime.engine, "books-se", False, ALICE)
    await h.runtime.worker.run_until_idle()
    results = await asyncio.gather(sweeps(other).digest(), sweeps(h.runtime).digest())
    assert sorted(results) == ["already posted today", f"digest of {local_day(clock.now)} queued"]
    await both_send(h, other)
    posts = h.fake.posts()[before:]
    assert len(posts) == 2
    second = h.fake.text_of(h.fake.ts_of(posts[1]))
    assert "*books-dk* (the sandbox ledger)\\n:white_check_mark: 0 synced" in second
    assert "*books-se* (the sandbox ledger)\\n:white_check_mark: 2 synced" in second
    assert "Paused" not in second


async def test_quota_reset_tells_the_channel_once(db_url: str, clock: FakeClock) -> None:
    async with two_replicas(db_url, clock, two_books(monthly_quota=1)) as (h, other):
        await quota_reset_once(h, other, clock)


async def quota_reset_once(h: SlackHarness, other: Runtime, clock: FakeClock) -> None:
    await h.ingest(bill("Q-1"), bill("Q-2"), bill("Q-3"))
    await h.runtime.worker.run_until_idle()
    clock.advance(10 * 24 * 3600)  # December
    results = await asyncio.gather(sweeps(h.runtime).quota_reset(), sweeps(other).quota_reset())
    assert sorted(results) == ["2 resumed after the monthly quota reset", "already reset this month"]
    await both_send(h, other)
    [post] = h.fake.posts()
    assert post.args["text"] == (
        "Monthly booking quota reset (2026-12): 2 postings held back by the quota are being sent now."
    )


async def test_digest_job_runs_daily_at_the_configured_local_time(
    replicas: tuple[SlackHarness, Runtime], clock: FakeClock
) -> None:
    h, _ = replicas
    scheduler = h.runtime.scheduler
    assert scheduler is not None
    trigger, fn, description = scheduler.jobs["digest"]
    assert description == "daily digest at 07:30"
    fire = trigger.get_next_fire_time(None, datetime.now().astimezone())
    local = fire.astimezone()
    assert (local.hour, local.minute) == (7, 30)
    await scheduler.run_job("digest", fn)
    assert scheduler.status["digest"].last_result == f"digest of {local_day(clock.now)} queued"


async def test_without_slack_there_is_no_digest_job(runtime: Runtime) -> None:
    assert runtime.notifier is None
    assert "digest" not in Scheduler(sweeps(runtime)).jobs


def test_digest_message() -> None:
    at = datetime(2026, 11, 22, 7, 30, tzinfo=UTC)
    d = Digest(
        day="2026-11-22",
        since=at - timedelta(days=1),
        until=at,
        integrations=(
            IntegrationDay("books-dk", "economic", False, synced=124, failed=3, waiting=17),
            IntegrationDay("books-se", "procountor", True, synced=0, failed=0, waiting=40),
        ),
        groups=(
            OpenGroup(4, "books-dk", "Account 2800 does not exist.", 2, "bills"),
            OpenGroup(9, "books-dk", "Supplier <3001> does not exist.", 1, "bill"),
        ),
        more_groups=3,
        totals={"synced": 124, "failed": 3, "waiting": 57},
    )
    assert Digest.from_detail(d.to_detail()) == d  # stored as JSON, rebuilt the same
    body = checked(digest_message(d))
    assert body.text == ("Daily digest 2026-11-22: 124 synced, 3 failed, 57 waiting; paused: books-se")
    assert "Supplier &lt;3001&gt;" in str(body.blocks)
    assert "…and 3 more open error groups" in str(body.blocks)
    snapshot("digest", body)
