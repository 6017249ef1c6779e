"""Issue 12, points 1, 7 and 12 (part), through signed Slack requests on loopback.

1. A booked voucher that changes says what the change was (field by field, before and
   after), stays in ``/ledger attention`` and the App Home as "booked, change not sent",
   and a person marks it handled.
7. A bill's payment posting waits for its invoice posting: never sent before it, never
   failed because of it, sent once the invoice is; Ignore on the invoice warns.
12. An update caused by a changed document is logged as trigger ``change``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.actions import ActionId
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.ledger import SandboxLedger
from storage.models import Attempt, Posting
from sync.resync import resync_document
from tests.slack_harness import ALICE, CHANNEL, SlackHarness, signed_headers, slack_harness
from tests.support import FakeClock, bill, eventually

PAID = {"date": "2026-11-20", "amount": "1250.00"}


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        yield h


def ledger(runtime: Runtime, name: str = "books-dk") -> SandboxLedger:
    runtime.engine.connector(name)  # the sandbox ledger comes to life with its connector
    return runtime.sandbox_books[name]


async def postings(runtime: Runtime) -> dict[str, Posting]:
    async with runtime.db.sessions() as s:
        return {f"{p.document_id}:{p.kind}": p for p in (await s.scalars(select(Posting))).all()}


async def posting(runtime: Runtime, kind: str, document_id: int | None = None) -> Posting:
    found = [
        p
        for p in (await postings(runtime)).values()
        if p.kind == kind and document_id in (None, p.document_id)
    ]
    return found[0]


async def command(h: SlackHarness, text: str) -> dict[str, Any]:
    form = {
        "token": "unused",
        "team_id": "T0TEAM",
        "channel_id": CHANNEL,
        "channel_name": "finance",
        "user_id": ALICE,
        "user_name": "alice",
        "command": "/ledger",
        "text": text,
        "api_app_id": "A0APP",
        "response_url": h.fake.response_url(ALICE, CHANNEL),
        "trigger_id": h.fake.trigger(ALICE),
    }
    body = urllib.parse.urlencode(form)
    answer: httpx.Response = await h.http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 200
    return dict(answer.json())


async def app_home(h: SlackHarness) -> str:
    """What the App Home shows Alice when she opens it."""
    event = {
        "token": "unused",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1790000000,
        "event": {"type": "app_home_opened", "user": ALICE, "channel": "D0HOME", "tab": "home"},
    }
    body = json.dumps(event)
    headers = {**signed_headers(body), "Content-Type": "application/json"}
    assert (await h.http.post("/slack/events", content=body, headers=headers)).status_code == 200
    await h.settle_clicks()
    await eventually(lambda: _published(h), message="home published")
    view = h.fake.of("views.publish")[-1].args["view"]
    return json.dumps(view if isinstance(view, dict) else json.loads(view), ensure_ascii=False)


async def _published(h: SlackHarness) -> bool:
    return bool(h.fake.of("views.publish"))


async def run(h: SlackHarness) -> None:
    await h.runtime.worker.run_until_idle()
    await h.settle_clicks()
    await h.runtime.worker.run_until_idle()
    await h.deliver()


def buttons_of(h: SlackHarness, ts: str) -> list[dict[str, Any]]:
    return [e for b in h.fake.messages[ts]["blocks"] if b["type"] == "actions" for e in b["elements"]]


async def test_a_booked_voucher_that_changes_shows_before_and_after_and_is_marked_handled(
    slack: SlackHarness,
) -> None:
    books = ledger(slack.runtime)
    await slack.ingest(bill("B-7"))
    await run(slack)
    invoice = await posting(slack.runtime, "invoice")
    assert invoice.external_ref is not None
    books.book(invoice.external_ref)  # the accountant books the voucher in the ledger panel
    # the supplier sends the bill again: a new amount and category (2800 → 2820)
    await slack.ingest(bill("B-7", version=2, amount="1350.00", category="Software"))
    await run(slack)

    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    shown = slack.fake.text_of(ts)
    assert "Booked, change not sent" in shown
    assert "Amount 1250.00 → 1350.00" in shown and "Account 2800 → 2820" in shown
    assert "then press *Mark handled*" in shown
    assert [b["action_id"] for b in buttons_of(slack, ts)] == [ActionId.MARK_HANDLED, ActionId.SHOW_LOG]
    mark = buttons_of(slack, ts)[0]
    assert "ledgerops never changes a booked voucher" in mark["confirm"]["text"]["text"]
    assert len(books.records_with_key(invoice.idempotency_key)) == 1  # never changed, never twice

    # the log says what happened, and that a change (not a retry) caused it
    await slack.press_button(ts, ActionId.SHOW_LOG)
    await slack.settle_clicks()
    log = json.dumps(slack.fake.ephemerals(ALICE)[-1].args["blocks"], ensure_ascii=False)
    assert "change · *change not sent: voucher booked*" in log
    assert "none → *booked*" not in log and "retry" not in log

    attention = json.dumps(await command(slack, "attention"), ensure_ascii=False)
    assert "Booked, change not sent" in attention and "Amount 1250.00 → 1350.00" in attention
    assert "Kontorland A/S" in attention

    home = await app_home(slack)
    assert "Booked, change not sent" in home and "Needs attention* — 1 postings" in home

    await slack.press_button(ts, ActionId.MARK_HANDLED)
    await run(slack)
    shown = slack.fake.text_of(ts)
    assert "Marked handled by <@U0ALICE>" in shown and "Amount 1250.00 → 1350.00" in shown
    assert [b["action_id"] for b in buttons_of(slack, ts)] == [ActionId.SHOW_LOG]
    assert "Nothing needs a person" in json.dumps(await command(slack, "attention"))

    # a further change needs a person again, still measured against what was booked
    await slack.ingest(bill("B-7", version=3, amount="1400.00", category="Software"))
    await run(slack)
    shown = slack.fake.text_of(ts)
    assert "Amount 1250.00 → 1400.00" in shown and "Marked handled" not in shown
    assert "Booked, change not sent" in json.dumps(await command(slack, "attention"), ensure_ascii=False)


async def test_a_change_is_logged_as_trigger_change(slack: SlackHarness) -> None:
    await slack.ingest(bill("B-9"))
    await run(slack)
    await slack.ingest(bill("B-9", version=2, amount="1300.00"))
    await run(slack)
    async with slack.runtime.db.sessions() as s:
        triggers = [
            (a.trigger, a.operation) for a in (await s.scalars(select(Attempt).order_by(Attempt.id))).all()
        ]
    assert triggers == [("auto", "create"), ("change", "update")]


async def test_a_payment_waits_for_its_failed_invoice_and_follows_it(slack: SlackHarness) -> None:
    books = ledger(slack.runtime)
    # B-1's invoice fails (Travel has no account); B-2 behind it in the queue is not held up
    await slack.ingest(bill("B-1", category="Travel", paid=PAID), bill("B-2", paid=PAID))
    await run(slack)
    invoice, payment = await posting(slack.runtime, "invoice"), await posting(slack.runtime, "payment")
    assert (invoice.state, payment.state, payment.last_error) == (
        "failed",
        "waiting",
        "waiting for the invoice posting",
    )
    assert books.records_with_key(payment.idempotency_key) == []
    assert {
        p.state for p in (await postings(slack.runtime)).values() if p.document_id != invoice.document_id
    } == {"synced"}
    [post] = slack.fake.posts()  # the invoice's message only: the payment did not fail
    ts = slack.fake.ts_of(post)
    assert "The payment posting waits for this one: it is sent once this is synced." in slack.fake.text_of(ts)
    ignore = next(b for b in buttons_of(slack, ts) if b["action_id"] == ActionId.IGNORE)
    assert "sends it on its own" in ignore["confirm"]["text"]["text"]

    # a person's resync of the payment alone: queued, but still waiting for the invoice
    outcomes = await resync_document(slack.runtime.engine, "ap", "bill", "B-1", ["payment"], actor=ALICE)
    await run(slack)
    assert [o.message for o in outcomes] == [
        "The payment posting queued, waiting for the invoice posting: "
        "it is sent once that one is in the ledger."
    ]
    assert (await posting(slack.runtime, "payment", invoice.document_id)).state == "pending"
    assert books.records_with_key(payment.idempotency_key) == []
    # a new version of the bill with the invoice still failing: the payment is parked again
    await slack.ingest(bill("B-1", version=2, category="Travel", paid=PAID, text="new note"))
    await run(slack)
    assert (await posting(slack.runtime, "payment", invoice.document_id)).state == "waiting"

    # the mapping is fixed and the invoice resynced: the invoice goes first, then its payment
    await command(slack, 'map category "Travel" 2800')
    await slack.settle_clicks()
    await resync_document(slack.runtime.engine, "ap", "bill", "B-1", ["invoice"], actor=ALICE)
    await run(slack)
    now = await postings(slack.runtime)
    assert {p.state for p in now.values()} == {"synced"}
    [inv] = books.records_with_key(invoice.idempotency_key)
    [pay] = books.records_with_key(payment.idempotency_key)
    assert inv.ref < pay.ref  # written in that order
    # still the invoice's message alone about the bill (the other post announces the mapping)
    about_the_bill = [c for c in slack.fake.posts() if "changed a mapping" not in c.args["text"]]
    assert len(about_the_bill) == 1, [c.args["text"] for c in slack.fake.posts()]


async def test_ignoring_a_failed_invoice_lets_its_waiting_payment_go(slack: SlackHarness) -> None:
    books = ledger(slack.runtime)
    await slack.ingest(bill("B-3", category="Travel", paid=PAID))
    await run(slack)
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    await slack.press_button(ts, ActionId.IGNORE)
    await run(slack)
    payment = await posting(slack.runtime, "payment")
    assert payment.state == "synced" and len(books.records_with_key(payment.idempotency_key)) == 1


async def test_ignore_on_an_invoice_whose_payment_is_in_the_ledger_warns(slack: SlackHarness) -> None:
    await slack.ingest(bill("B-4", paid=PAID))
    await run(slack)
    # the invoice changes to a category without an account: it fails, its payment stays synced
    await slack.ingest(bill("B-4", version=2, category="Travel", paid=PAID))
    await run(slack)
    assert (await posting(slack.runtime, "payment")).state == "synced"
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    ignore = next(b for b in buttons_of(slack, ts) if b["action_id"] == ActionId.IGNORE)
    assert (
        "The payment posting of this bill is already in the ledger; ignoring the invoice posting "
        "leaves it without its invoice." in ignore["confirm"]["text"]["text"]
    )
