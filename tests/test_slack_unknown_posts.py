"""Posts whose outcome is unknown (HTTP 500, a lost answer): found in the channel, or posted again.

Every post carries its outbox row in the message ``metadata``; before a post
with an unknown outcome is sent again, the channel's history is read for it.
The test clock stands still unless ``deliver`` moves it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from storage.models import SlackMessage
from storage.states import MessageState
from sync.resync import resync_document
from tests.slack_harness import ALICE, CHANNEL, Planned, SlackHarness, slack_harness
from tests.support import FakeClock, bill

CATEGORIES = ["Travel", "Meals", "Taxi", "Hotel", "Fuel", "Parking", "Books", "Phone"]


@pytest.fixture
async def slack(db_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock) as h:
        await h.notifier.reconcile()
        yield h


async def fail(h: SlackHarness, *events: dict) -> None:
    await h.ingest(*events)
    await h.runtime.worker.run_until_idle()


def top_level(h: SlackHarness) -> list[dict]:
    """The channel's messages as a person scrolling it sees them (no thread replies)."""
    return [m for m in h.fake.messages.values() if m["channel"] == CHANNEL and not m.get("thread_ts")]


async def rows(h: SlackHarness) -> list[SlackMessage]:
    async with h.runtime.db.sessions() as s:
        return list((await s.scalars(select(SlackMessage).order_by(SlackMessage.id))).all())


async def test_alerts_during_a_slack_500_spell_each_arrive_exactly_once(slack: SlackHarness) -> None:
    # Slack answers 500 to everything for 40 seconds; every other post is stored anyway.
    slack.fake.break_for(status=500, stores=lambda n: n % 2 == 0)
    await fail(slack, *(bill(f"S-{i}", category=c) for i, c in enumerate(CATEGORIES)))
    await slack.deliver(within=40)
    stored_in_spell = len(top_level(slack))
    assert 0 < stored_in_spell < len(CATEGORIES)  # some posts were stored, some not

    slack.fake.mend()
    await slack.deliver()
    shown = top_level(slack)
    assert len(shown) == len(CATEGORIES)
    for category in CATEGORIES:
        assert sum(category in (m["text"] or "") for m in shown) == 1, category
    assert {r.state for r in await rows(slack)} == {MessageState.POSTED}
    assert sorted(r.ts for r in await rows(slack)) == sorted(m["ts"] for m in shown)
    lookups = slack.fake.of("conversations.history")
    assert lookups and all(c.args.get("oldest") for c in lookups)
    await slack.deliver()
    assert len(top_level(slack)) == len(CATEGORIES)


async def test_500_after_the_post_was_stored_makes_no_duplicate(slack: SlackHarness) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=500, do_it=True))  # stored, answer lost
    await fail(slack, bill("U-1", category="Travel"))
    await slack.deliver()
    [message] = top_level(slack)
    assert len([c for c in slack.fake.calls if c.method == "chat.postMessage"]) == 1
    [row] = await rows(slack)
    assert row.state == MessageState.POSTED and row.ts == message["ts"]  # adopted, not posted again
    assert message["metadata"]["event_payload"]["outbox_row"] == row.id
    [lookup] = slack.fake.of("conversations.history")
    assert lookup.args["channel"] == CHANNEL and lookup.args["include_all_metadata"] in ("1", "true", True)
    # The subject moves on: the adopted message is updated in place, not posted anew.
    await resync_document(slack.runtime.engine, "ap", "bill", "U-1", ["invoice"], actor=ALICE)
    await slack.deliver()
    assert len(top_level(slack)) == 1
    assert "Resync requested by <@U0ALICE>" in slack.fake.text_of(message["ts"])


async def test_500_before_the_post_was_stored_posts_it_again(slack: SlackHarness) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=500))  # not stored
    await fail(slack, bill("U-1", category="Travel"))
    await slack.deliver()
    [message] = top_level(slack)
    assert "Travel" in message["text"]
    tries = [c for c in slack.fake.calls if c.method == "chat.postMessage"]
    assert [c.status for c in tries] == [500, 200]
    # the history was read between the two tries
    [lookup] = slack.fake.of("conversations.history")
    assert tries[0].at is not None and lookup.at is not None and tries[0].at < lookup.at <= tries[1].at
    [row] = await rows(slack)
    assert row.state == MessageState.POSTED and row.ts == message["ts"]


async def test_a_failing_history_lookup_keeps_the_post_waiting(slack: SlackHarness, clock: FakeClock) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=500))
    slack.fake.plan(
        "conversations.history",
        Planned(status=500),
        Planned(status=429, retry_after=30),
        Planned(status=200, error="internal_error"),
    )
    await fail(slack, bill("U-1", category="Travel"))
    await slack.deliver(within=20)
    assert top_level(slack) == []
    [row] = await rows(slack)
    assert row.state == MessageState.UNCONFIRMED and row.next_attempt_at is not None  # waiting, not dropped
    await slack.deliver()
    assert len(top_level(slack)) == 1
    lookups = [c for c in slack.fake.calls if c.method == "conversations.history"]
    assert [c.status for c in lookups] == [500, 429, 200, 200]
    assert lookups[2].at is not None and lookups[1].at is not None
    assert lookups[2].at - lookups[1].at >= timedelta(seconds=30)  # Retry-After honoured


async def test_a_sender_that_died_while_posting_is_resolved_by_the_next(
    slack: SlackHarness, clock: FakeClock
) -> None:
    slack.fake.plan("chat.postMessage", Planned(status=500, do_it=True))
    await fail(slack, bill("U-1", category="Travel"))
    await slack.deliver()
    [row] = await rows(slack)
    assert row.state == MessageState.POSTED
    # a post claimed by a process that never came back (SIGKILL between claim and answer)
    async with slack.runtime.db.sessions() as s, s.begin():
        stuck = await s.get(SlackMessage, row.id)
        assert stuck is not None
        stuck.state, stuck.ts, stuck.next_attempt_at = MessageState.SENDING, None, clock()
    clock.now = clock() + timedelta(seconds=600)
    await slack.deliver()
    assert len(top_level(slack)) == 1
    [row] = await rows(slack)
    assert row.state == MessageState.POSTED and row.ts == top_level(slack)[0]["ts"]
