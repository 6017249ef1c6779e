"""Every click gets an answer where it was made: one test per button of a posting or group message.

Each press goes through a signed Slack request on loopback; each test asserts what
the clicker sees afterwards: the message changed in place, or (when the message
cannot change) a note only the clicker sees.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.actions import ActionId, IntegrationRef, LogPageRef, PageRef
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.ledger import SandboxLedger
from storage.models import Posting
from tests.slack_harness import ALICE, SlackHarness, slack_harness
from tests.support import FakeClock, bill, eventually


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        assert h.runtime.notifier is not None
        await h.runtime.notifier.start()
        yield h


def books(h: SlackHarness) -> SandboxLedger:
    h.runtime.engine.connector("books-dk")
    return h.runtime.sandbox_books["books-dk"]


async def failed_message(h: SlackHarness, *events: dict[str, Any]) -> str:
    await h.ingest(*events)
    await h.runtime.worker.run_until_idle()
    await h.deliver()
    [post] = h.fake.posts()
    return h.fake.ts_of(post)


async def click(h: SlackHarness, ts: str, action_id: str) -> None:
    assert (await h.press_button(ts, action_id)).status_code == 200
    await h.settle_clicks()


async def shows(h: SlackHarness, ts: str, text: str) -> None:
    async def shown() -> bool:
        await h.deliver(within=60)
        return text in h.fake.text_of(ts)

    await eventually(shown, message=f"message shows {text!r}")


async def test_resync_invoice_says_who_asked_in_the_message(slack: SlackHarness) -> None:
    books(slack).accounts.pop("2800")
    ts = await failed_message(slack, bill("A-1"))
    await click(slack, ts, ActionId.RESYNC_INVOICE)
    await shows(slack, ts, "Resync requested by <@U0ALICE> <!date^")
    await slack.runtime.worker.run_until_idle()  # the account is still missing: the result, in place
    await shows(slack, ts, "*Resync by <@U0ALICE> <!date^")
    assert "Account 2800 does not exist." in slack.fake.text_of(ts)


async def test_resync_payment_from_the_invoices_message_is_answered_privately(slack: SlackHarness) -> None:
    # An invoice message posted before payments waited for their invoice still carries
    # "Resync payment posting": its click is answered where it was made.
    books(slack).accounts.pop("2800")  # the invoice fails, so its payment waits for it
    ts = await failed_message(slack, bill("A-2", paid={"date": "2026-11-20", "amount": "1250.00"}))
    before = slack.fake.text_of(ts)
    async with slack.runtime.db.sessions() as s:
        invoice = (await s.scalars(select(Posting).where(Posting.kind == "invoice"))).one()
    # the button's value names the message's own posting; the click asks for the payment
    value = json.dumps({"document": invoice.document_id, "posting": invoice.id}, separators=(",", ":"))
    assert (await slack.press(ActionId.RESYNC_PAYMENT, value, message_ts=ts)).status_code == 200
    await slack.settle_clicks()
    [answer] = slack.fake.ephemerals(ALICE)
    assert "The payment posting queued, waiting for the invoice posting" in answer.args["text"]
    assert "does not change" in answer.args["text"]
    await slack.deliver()
    assert slack.fake.text_of(ts) == before  # the invoice's message is about the invoice


async def test_resync_of_a_journal_says_who_asked_in_the_message(slack: SlackHarness) -> None:
    books(slack).accounts.pop("4000")
    run = {
        "source": "payroll",
        "kind": "payroll_run",
        "id": "RUN-1",
        "version": 1,
        "integration": "books-dk",
        "data": {
            "run": "2026-11",
            "date": "2026-11-25",
            "lines": [
                {"account": "4000", "amount": "100.00", "period": "2026-11"},
                {"account": "6900", "amount": "-100.00", "period": "2026-11"},
            ],
        },
    }
    ts = await failed_message(slack, run)
    await click(slack, ts, ActionId.RESYNC_POSTING)
    await shows(slack, ts, "Resync requested by <@U0ALICE>")


async def test_ignore_says_who_ignored_in_the_message(slack: SlackHarness) -> None:
    books(slack).accounts.pop("2800")
    ts = await failed_message(slack, bill("A-3"))
    await click(slack, ts, ActionId.IGNORE)
    await shows(slack, ts, "Ignored by <@U0ALICE>")


async def test_show_log_and_its_pages_answer_privately(slack: SlackHarness) -> None:
    books(slack).accounts.pop("2800")
    ts = await failed_message(slack, bill("A-4"))
    await click(slack, ts, ActionId.SHOW_LOG)
    [log] = slack.fake.ephemerals(ALICE)
    assert "Account 2800 does not exist." in json.dumps(log.args["blocks"])
    async with slack.runtime.db.sessions() as s:
        p = await s.get(Posting, 1)
    assert p is not None
    page = LogPageRef(document=p.document_id, integration=p.integration_id, page=0)
    await slack.press(ActionId.LOG_PAGE, page.value(), message_ts=ts)
    await slack.settle_clicks()
    assert len(slack.fake.ephemerals(ALICE)) == 2


async def test_resync_all_says_who_asked_in_the_group_message(slack: SlackHarness) -> None:
    books(slack).accounts.pop("2800")
    ts = await failed_message(slack, bill("A-5"), bill("A-6"))
    await click(slack, ts, ActionId.RESYNC_GROUP)
    await shows(slack, ts, "Resync requested by <@U0ALICE>")


async def test_pause_and_resume_show_the_home_tab_again_with_the_new_state(slack: SlackHarness) -> None:
    for action_id, now in ((ActionId.PAUSE, "Resume"), (ActionId.RESUME, "Pause")):
        await slack.press(action_id, IntegrationRef(integration="books-dk").value())
        await slack.settle_clicks()
        published = slack.fake.of("views.publish", user_id=ALICE)[-1]
        [accessory] = [b["accessory"] for b in published.args["view"]["blocks"] if b.get("accessory")]
        assert accessory["text"]["text"] == now


async def test_a_page_of_the_attention_answer_replaces_the_one_shown(slack: SlackHarness) -> None:
    books(slack).accounts.pop("2800")
    await failed_message(slack, bill("A-7"))
    await slack.press(ActionId.PAGE, PageRef(page=1, cmd="attention").value(), answer_here=True)
    await slack.settle_clicks()
    [answer] = [c.args for c in slack.fake.calls if c.method == "response_url"]
    assert answer["replace_original"] is True and "Account 2800 does not exist." in json.dumps(answer)
