"""The outbox: Slack down, 429, pace, grouping, unknown outcomes, catching up at start-up.

The test clock stands still unless a test (or ``deliver``) moves it, so waits
(grouping window, one post per second, Retry-After, backoff) cost no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from app import build_runtime
from bot.actions import ActionId
from connectors.sandbox.books import SandboxBooks
from storage.models import Posting, SlackMessage
from storage.states import MessageState
from sync.ingest import ingest_batch
from tests.slack_harness import ALICE, Planned, SlackHarness, slack_harness
from tests.support import FakeClock, bill, make_config, make_env


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    """Nothing runs in the background: each test drives worker and outbox itself."""
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        yield h


def unmapped(i: int, category: str) -> dict:
    return bill(f"U-{i}", category=category)


async def fail(h: SlackHarness, *events: dict) -> None:
    await h.ingest(*events)
    await h.runtime.worker.run_until_idle()


async def test_slack_down_for_a_while_loses_and_duplicates_nothing(slack: SlackHarness) -> None:
    await slack.fake.go_down()
    await fail(slack, *(unmapped(i, c) for i, c in enumerate(["Travel", "Meals", "Taxi"])))
    await slack.deliver(within=900)  # a quarter of an hour of retries, Slack still down
    assert slack.fake.posts() == []
    async with slack.runtime.db.sessions() as s:
        waiting = (await s.scalars(select(SlackMessage.state))).all()
    assert sorted(waiting) == [MessageState.TO_POST] * 3
    # meanwhile one bill changed and failed again: its message will show it as it is now
    await fail(slack, bill("U-1", version=2, category="Meals", amount="1300.00"))

    await slack.fake.come_back()
    await slack.deliver()
    posts = slack.fake.posts()
    assert len(posts) == 3
    assert len({p.args["text"] for p in posts}) == 3  # one per failure, none twice
    shown = [slack.fake.text_of(slack.fake.ts_of(p)) for p in posts]
    assert sum("1,300.00 DKK" in m and "attempts: 2" in m for m in shown) == 1
    await slack.deliver()
    assert len(slack.fake.posts()) == 3


async def test_slack_answering_503_and_refusing_is_retried_later(slack: SlackHarness) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=503), Planned(status=200, error="fatal_error"))
    await fail(slack, unmapped(1, "Travel"))
    await slack.deliver()
    assert len(slack.fake.posts()) == 1
    tries = [c for c in slack.fake.calls if c.method == "chat.postMessage"]
    assert [c.status for c in tries] == [503, 200, 200] and [c.ok for c in tries] == [False, False, True]
    assert tries[1].at is not None and tries[0].at is not None and tries[1].at > tries[0].at


async def test_429_waits_for_retry_after(slack: SlackHarness, clock: FakeClock) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=429, retry_after=30))
    await fail(slack, unmapped(1, "Travel"))
    await slack.deliver(within=20)
    assert slack.fake.posts() == []
    await slack.deliver()
    [limited, post] = [c for c in slack.fake.calls if c.method == "chat.postMessage"]
    assert limited.status == 429 and post.ok
    assert post.at is not None and limited.at is not None
    assert post.at - limited.at >= timedelta(seconds=30)


async def test_at_most_one_post_per_second_per_channel(slack: SlackHarness) -> None:
    await fail(slack, *(unmapped(i, f"Category {i}") for i in range(5)))
    await slack.deliver()
    times = [p.at for p in slack.fake.posts()]
    assert len(times) == 5
    assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(times))


async def test_200_failures_with_one_fingerprint_make_one_group_message(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    slack.runtime.engine.connector("books-dk")
    sandbox_books["books-dk"].accounts.pop("2800")
    await fail(slack, *(bill(f"G-{i}") for i in range(200)))
    await slack.deliver()
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    assert post.args["text"].startswith("200 bills: Account 2800 does not exist.")
    assert slack.fake.action_ids(ts) == [ActionId.RESYNC_GROUP]

    await fail(slack, *(bill(f"G-{i}") for i in range(200, 210)))
    await slack.deliver()
    assert len(slack.fake.posts()) == 1
    assert slack.fake.messages[ts]["text"].startswith("210 bills")  # updated in place

    sandbox_books["books-dk"].accounts["2800"] = "Office supplies"
    value = _value(slack, ts, ActionId.RESYNC_GROUP)
    assert (await slack.press(ActionId.RESYNC_GROUP, value)).status_code == 200
    await slack.settle_clicks()
    await slack.deliver()
    assert "Resync requested by <@U0ALICE>" in slack.fake.text_of(ts)
    await slack.press(ActionId.RESYNC_GROUP, value)  # a second click queues nothing more
    await slack.settle_clicks()
    assert "Nothing to resync" in slack.fake.ephemerals(ALICE)[0].args["text"]
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    assert slack.fake.messages[ts]["text"].startswith("Resolved")
    assert "Fixed by <@U0ALICE>" in slack.fake.text_of(ts)
    assert len(slack.fake.posts()) == 1
    async with slack.runtime.db.sessions() as s:
        states = set((await s.scalars(select(Posting.state))).all())
    assert states == {"synced"}


async def test_start_up_posts_failures_that_happened_without_slack(
    db_url: str, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    quiet = await build_runtime(make_env(db_url), make_config(), migrate=False, clock=clock)
    assert quiet.notifier is None  # no bot token: sandbox mode, nothing to Slack
    valid = [bill("Q-1", category="Travel")]
    from sync.documents import validate_batch

    events, _ = validate_batch({"events": valid}, {"books-dk"})
    await ingest_batch(quiet.engine, events)
    await quiet.worker.run_until_idle()
    await quiet.close()
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        await h.deliver()
        [post] = h.fake.posts()
        assert "Travel" in post.args["text"]


async def test_deleted_message_is_posted_anew_and_new_incident_gets_new_message(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    slack.runtime.engine.connector("books-dk")
    books = sandbox_books["books-dk"]
    books.accounts.pop("2800")
    await fail(slack, bill("N-1"))
    await slack.deliver()
    first = slack.fake.ts_of(slack.fake.posts()[0])
    del slack.fake.messages[first]  # someone deleted it in Slack
    books.accounts["2800"] = "Office supplies"
    await slack.press(ActionId.RESYNC_INVOICE, _value(slack, first, ActionId.RESYNC_INVOICE))
    await slack.settle_clicks()
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    assert len(slack.fake.posts()) == 2
    second = slack.fake.ts_of(slack.fake.posts()[1])
    assert "is synced" in slack.fake.text_of(second)
    # weeks later the bill changes to a category nobody mapped: a new incident, a new message
    await fail(slack, bill("N-1", version=2, category="Travel"))
    await slack.deliver()
    assert len(slack.fake.posts()) == 3
    assert "is synced" in slack.fake.text_of(second)  # the old one stays as history
    assert "Travel" in slack.fake.text_of(slack.fake.ts_of(slack.fake.posts()[2]))


def _value(h: SlackHarness, ts: str, action: ActionId) -> str:
    """The value a button had when the message was first posted."""
    call = next(
        c for c in h.fake.calls if c.method == "chat.postMessage" and c.ok and c.result.get("ts") == ts
    )
    return next(
        e["value"]
        for b in call.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action
    )
