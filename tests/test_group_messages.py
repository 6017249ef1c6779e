"""Issue 12 (4, 3): an error group's message follows its members and says what a try got."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.sandbox.books import SandboxBooks
from sync.admin import set_mapping
from tests.slack_harness import ALICE, SlackHarness, slack_harness
from tests.support import FakeClock, bill

RESYNC_GROUP = "ledgerops.resync_group"


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        h.runtime.engine.connector("books-dk")
        yield h


async def settle(slack: SlackHarness) -> None:
    await slack.settle_clicks()
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()


async def test_a_group_whose_bills_now_fail_another_way_no_longer_offers_resync_all(
    slack: SlackHarness,
) -> None:
    await slack.ingest(bill("T-1", category="Travel"), bill("T-2", category="Travel"))
    await settle(slack)
    [first] = slack.fake.posts()
    ts = slack.fake.ts_of(first)
    assert slack.fake.messages[ts]["text"].startswith("2 bills: The category 'Travel' has no account")

    await set_mapping(slack.runtime.engine, "books-dk", "category", "Travel", 9999, ALICE)
    await settle(slack)
    old = slack.fake.messages[ts]
    assert "No longer failing this way" in slack.fake.text_of(ts)
    assert slack.fake.action_ids(ts) == []  # no "Resync all 2 bills" that answers "Nothing to resync"
    assert old["text"].startswith("No longer failing this way: The category 'Travel'")
    [_, second] = slack.fake.posts()
    assert second.args["text"].startswith("2 bills: Account 9999 does not exist.")
    assert len(slack.fake.posts()) == 2  # the bills have no messages of their own


async def test_resync_all_on_a_still_broken_group_says_it_was_tried_and_failed_again(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("B-1"), bill("B-2"))
    await settle(slack)
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    await slack.press_button(ts, RESYNC_GROUP, user=ALICE)
    await settle(slack)
    shown = slack.fake.text_of(ts)
    assert "Tried again" in shown and f"by <@{ALICE}>: failed again — Account 2800 does not exist." in shown
    assert slack.fake.action_ids(ts) == [RESYNC_GROUP]
    assert len(slack.fake.posts()) == 1


async def test_a_failure_the_group_shows_keeps_no_message_of_its_own(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("A-1"))
    await settle(slack)
    [alone] = slack.fake.posts()
    ts = slack.fake.ts_of(alone)
    assert "ledgerops.resync_invoice" in slack.fake.action_ids(ts)
    await slack.ingest(bill("A-2"))  # the same failure again: now a group
    await settle(slack)
    [_, group] = slack.fake.posts()
    assert group.args["text"].startswith("2 bills: Account 2800 does not exist.")
    assert slack.fake.action_ids(ts) == ["ledgerops.show_log"]  # resync and ignore: in the group's
    assert "fails like others" in slack.fake.messages[ts]["text"]


async def test_status_attention_and_app_home_count_the_same_open_groups(slack: SlackHarness) -> None:
    from tests.test_slack_commands import ResponseUrls, command, shown

    urls = ResponseUrls(slack.fake)
    await slack.ingest(
        bill("C-1", category="Travel"), bill("C-2", category="Travel"), bill("C-3", category="Meals")
    )
    await settle(slack)
    await set_mapping(slack.runtime.engine, "books-dk", "category", "Travel", 9999, ALICE)
    await settle(slack)  # Travel's group is left for "Account 9999 does not exist"
    status = shown((await command(slack, "status", urls)).json())
    attention = shown((await command(slack, "attention", urls)).json())
    assert "2 open error groups" in status
    assert "Account 9999 does not exist" in attention and "Meals" in attention
    assert 'has no account mapping in books-dk. Map it (/ledger map category \\"Travel\\"' not in attention


async def _bulk_resync_failed(slack: SlackHarness) -> str:
    """Open the bulk modal for failed postings, submit it, and return its message's ts."""
    import json

    from tests.test_slack_commands import ResponseUrls, _submission, _submit, command

    await command(slack, "resync failed books-dk", ResponseUrls(slack.fake))
    await slack.settle_clicks()
    opened = slack.fake.of("views.open")[-1]
    view = opened.args["view"] if isinstance(opened.args["view"], dict) else json.loads(opened.args["view"])
    submission = _submission(view, confirmed=True)
    submission["view"]["id"] = f"V0BULK{len(slack.fake.posts())}"  # a new modal, not the same submit
    assert (await _submit(slack, submission)).status_code == 200
    await slack.settle_clicks()
    await slack.deliver(within=60)
    return slack.fake.ts_of(slack.fake.posts()[-1])


async def test_bulk_resync_says_done_only_when_sent_and_names_why_they_failed_again(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("K-1"), bill("K-2"))
    await settle(slack)
    ts = await _bulk_resync_failed(slack)
    assert slack.fake.messages[ts]["text"] == "Bulk resync: 0 of 2 postings sent, 2 waiting"
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    shown = slack.fake.text_of(ts)
    assert slack.fake.messages[ts]["text"] == (
        "Bulk resync finished: 0 sent, 2 failed again: Account 2800 does not exist."
    )
    assert "*2 failed again:* Account 2800 does not exist." in shown and "done" not in shown

    sandbox_books["books-dk"].accounts["2800"] = "Office supplies"
    ts = await _bulk_resync_failed(slack)
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    assert slack.fake.messages[ts]["text"] == "Bulk resync done: 2 sent, 0 failed"
