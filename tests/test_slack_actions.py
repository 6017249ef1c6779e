"""Failure messages and their buttons, end to end over loopback HTTP with a fake Slack.

A failure is made the way it happens to a finance team: the sandbox ledger has
no account 2800 (someone removed it), or a bill's category has no mapping.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.actions import ActionId, PostingRef
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.ledger import SandboxLedger
from storage.models import Activity, Attempt, Posting
from sync.resync import resync_document
from tests.slack_harness import ALICE, BOB, MALLORY, SlackHarness, slack_harness
from tests.support import FakeClock, bill, eventually

ACK_DEADLINE = 3.0  # Slack's own limit; the benchmark measures the real figure


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    """Notifier and bolt running in the background; the worker is run by each test."""
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        assert h.runtime.notifier is not None
        await h.runtime.notifier.start()
        yield h


def ledger(runtime: Runtime, name: str = "books-dk") -> SandboxLedger:
    runtime.engine.connector(name)  # the sandbox ledger comes to life with its connector
    return runtime.sandbox_books[name]


async def posting(runtime: Runtime, kind: str = "invoice") -> Posting:
    async with runtime.db.sessions() as s:
        return (await s.scalars(select(Posting).where(Posting.kind == kind).order_by(Posting.id))).first()


async def attempts(runtime: Runtime) -> int:
    async with runtime.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Attempt)) or 0)


async def test_failure_message_shows_the_bill_and_the_right_buttons(slack: SlackHarness) -> None:
    ledger(slack.runtime).accounts.pop("2800")
    await slack.ingest(bill("B-1", supplier={"number": 3001, "name": "Kontorland A/S"}))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    assert post.args["channel"] == "C0FINANCE"
    shown = slack.fake.text_of(ts)
    for fact in (
        "Kontorland A/S",
        "INV-B-1",
        "1,250.00 DKK",
        "books-dk",
        "Invoice posting",
        "Account 2800 does not exist.",
        "attempts: 1",
    ):
        assert fact in shown, fact
    # unpaid: no payment posting to resync
    assert slack.fake.action_ids(ts) == [ActionId.RESYNC_INVOICE, ActionId.SHOW_LOG, ActionId.IGNORE]


async def test_paid_bill_whose_invoice_failed_says_its_payment_waits(slack: SlackHarness) -> None:
    await slack.ingest(bill("B-2", category="Travel", paid={"date": "2026-11-20", "amount": "1250.00"}))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    assert "has no account mapping" in slack.fake.text_of(ts)
    assert "The payment posting waits for this one" in slack.fake.text_of(ts)
    # no payment resync while it waits: it follows the invoice on its own
    assert slack.fake.action_ids(ts) == [ActionId.RESYNC_INVOICE, ActionId.SHOW_LOG, ActionId.IGNORE]


async def test_click_acks_at_once_then_resyncs_and_rebuilds_the_message(slack: SlackHarness) -> None:
    books = ledger(slack.runtime)
    books.accounts.pop("2800")
    await slack.ingest(bill("B-3"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    books.accounts["2800"] = "Office supplies"  # the accountant created the account

    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await slack.press_button(ts, ActionId.RESYNC_INVOICE)
    assert answer.status_code == 200
    assert loop.time() - started < ACK_DEADLINE
    await slack.settle_clicks()
    await eventually(
        lambda: _shows(slack, ts, "Resync requested by <@U0ALICE>"), message="message says who asked"
    )
    assert slack.fake.action_ids(ts) == [ActionId.SHOW_LOG]

    await slack.runtime.worker.run_until_idle()
    await eventually(lambda: _shows(slack, ts, "is synced"), message="message shows synced")
    shown = slack.fake.text_of(ts)
    assert "2026-50001" in shown and "Fixed by <@U0ALICE>" in shown
    assert all(u.args["ts"] == ts for u in slack.fake.of("chat.update"))  # in place
    assert len(slack.fake.posts()) == 1
    # the new attempt went into the message's thread
    await slack.deliver()
    [reply] = slack.fake.replies(ts)
    assert "synced" in json.dumps(reply.args["blocks"]) and "U0ALICE" in json.dumps(reply.args["blocks"])
    p = await posting(slack.runtime)
    assert p.state == "synced" and p.external_ref == "2026-50001"


async def _shows(h: SlackHarness, ts: str, text: str) -> bool:
    await h.deliver(within=60)  # also over a retry's backoff, should one send have failed
    return text in h.fake.text_of(ts)


async def test_still_failing_shows_the_new_error(slack: SlackHarness) -> None:
    books = ledger(slack.runtime)
    books.accounts.pop("2800")
    await slack.ingest(bill("B-4"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    books.switches.fail_next = 0
    books.closed_before = __import__("datetime").date(2027, 1, 1)  # now the period is closed
    books.accounts["2800"] = "Office supplies"
    await slack.press_button(ts, ActionId.RESYNC_INVOICE)
    await slack.settle_clicks()
    await slack.runtime.worker.run_until_idle()
    await eventually(lambda: _shows(slack, ts, "is closed for posting"), message="new error")
    assert "attempts: 2" in slack.fake.text_of(ts)
    assert ActionId.RESYNC_INVOICE in slack.fake.action_ids(ts)


async def test_double_click_and_two_people_run_the_resync_once(slack: SlackHarness) -> None:
    ledger(slack.runtime).accounts.pop("2800")
    await slack.ingest(bill("B-5"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    before = await attempts(slack.runtime)
    answers = await asyncio.gather(
        slack.press_button(ts, ActionId.RESYNC_INVOICE, user=ALICE),
        slack.press_button(ts, ActionId.RESYNC_INVOICE, user=ALICE),
        slack.press_button(ts, ActionId.RESYNC_INVOICE, user=BOB),
    )  # BOB: via the user group
    assert [a.status_code for a in answers] == [200, 200, 200]
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        outcomes = sorted(
            (await s.scalars(select(Activity.outcome).where(Activity.action == "resync"))).all()
        )
    assert outcomes == ["ok", "refused", "refused"]
    told = slack.fake.ephemerals(ALICE) + slack.fake.ephemerals(BOB)
    assert len(told) == 2 and all("already queued" in c.args["text"] for c in told)
    await slack.runtime.worker.run_until_idle()
    assert await attempts(slack.runtime) == before + 1


async def test_user_outside_the_allow_list_is_refused_and_nothing_changes(slack: SlackHarness) -> None:
    ledger(slack.runtime).accounts.pop("2800")
    await slack.ingest(bill("B-6"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    before = await attempts(slack.runtime)
    for action in (ActionId.RESYNC_INVOICE, ActionId.IGNORE):
        answer = await slack.press_button(ts, action, user=MALLORY)
        assert answer.status_code == 200
        await slack.settle_clicks()
    told = slack.fake.ephemerals(MALLORY)
    assert len(told) == 2
    assert "not allowed to resync invoice postings" in told[0].args["text"]
    assert "<@U0ALICE>" in told[0].args["text"] and "S0FINANCE" in told[0].args["text"]
    p = await posting(slack.runtime)
    assert p.state == "failed" and p.queued_actor is None
    await slack.runtime.worker.run_until_idle()
    assert await attempts(slack.runtime) == before
    async with slack.runtime.db.sessions() as s:
        refused = (
            await s.execute(select(Activity.actor, Activity.action, Activity.outcome).order_by(Activity.id))
        ).all()
    assert refused == [(MALLORY, "resync_invoice", "refused"), (MALLORY, "ignore", "refused")]
    assert len(slack.fake.of("usergroups.users.list")) == 1  # cached
    # the refusal is in the log
    await slack.press_button(ts, ActionId.SHOW_LOG, user=ALICE)
    await slack.settle_clicks()
    [log] = slack.fake.ephemerals(ALICE)
    assert "U0MALLORY" in json.dumps(log.args["blocks"]) and "refused" in json.dumps(log.args["blocks"])


async def test_booked_posting_shows_why_and_offers_no_resync(slack: SlackHarness) -> None:
    books = ledger(slack.runtime)
    await slack.ingest(bill("B-7"))
    await slack.runtime.worker.run_until_idle()
    books.book("2026-50001")  # the accountant booked the voucher
    await slack.ingest(bill("B-7", version=2, amount="1300.00"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    shown = slack.fake.text_of(ts)
    assert "is booked" in shown and "change not sent" in shown and "2026-50001" in shown
    assert slack.fake.action_ids(ts) == [ActionId.MARK_HANDLED, ActionId.SHOW_LOG]
    # a stale button from elsewhere does not book it twice either
    p = await posting(slack.runtime)
    await slack.press(ActionId.RESYNC_INVOICE, PostingRef(document=p.document_id, posting=p.id).value())
    await slack.settle_clicks()
    assert "booked in the ledger" in slack.fake.ephemerals(ALICE)[0].args["text"]
    assert len(books.records_with_key(p.idempotency_key)) == 1


async def test_ignore_and_show_log_pages(slack: SlackHarness) -> None:
    ledger(slack.runtime).accounts.pop("2800")
    await slack.ingest(bill("B-8"))
    await slack.runtime.worker.run_until_idle()
    for _ in range(20):  # a long history: many tries
        await resync_document(slack.runtime.engine, "ap", "bill", "B-8", ["invoice"], actor=BOB)
        await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    await slack.press_button(ts, ActionId.SHOW_LOG)
    await slack.settle_clicks()
    [first] = slack.fake.ephemerals(ALICE)
    blocks = first.args["blocks"]
    assert len(blocks) <= 50 and "page 1" in json.dumps(blocks)
    pressable = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    # the log offers the message's resync buttons first, then "Older entries"
    assert [e["action_id"] for e in pressable] == [ActionId.RESYNC_INVOICE, ActionId.LOG_PAGE]
    older = pressable[-1]
    await slack.press(ActionId.LOG_PAGE, older["value"])
    await slack.settle_clicks()
    assert "page 2" in json.dumps(slack.fake.ephemerals(ALICE)[1].args["blocks"])

    await slack.press_button(ts, ActionId.IGNORE)
    await slack.settle_clicks()
    await eventually(lambda: _shows(slack, ts, "Ignored by <@U0ALICE>"), message="ignored")
    assert (await posting(slack.runtime)).state == "ignored"


async def test_work_waits_for_the_acks_in_flight_unless_urgent(slack: SlackHarness) -> None:
    bot = slack.runtime.slack
    assert bot is not None
    started: list[str] = []

    async def work(name: str) -> None:
        started.append(name)

    with bot.receiving():  # a click is being answered
        bot.work.spawn(work("resync"), "resync")
        bot.work.spawn(work("views.open"), "open", urgent=True)
        for _ in range(20):
            await asyncio.sleep(0)  # ok-sleep: yields only; the queued work must not start
        assert started == ["views.open"]
    await bot.idle()
    assert started == ["views.open", "resync"]


async def test_a_click_is_answered_first_and_its_work_runs_after_the_acks(slack: SlackHarness) -> None:
    """Through bolt's lazy listeners: the 200 comes back while the work still waits its turn."""
    ledger(slack.runtime).accounts.pop("2800")
    await slack.ingest(bill("B-9"))
    await slack.runtime.worker.run_until_idle()
    p = await posting(slack.runtime)
    bot = slack.runtime.slack
    assert bot is not None
    with bot.receiving():  # another click is being answered
        answer = await slack.press(
            ActionId.SHOW_LOG, PostingRef(document=p.document_id, posting=p.id).value()
        )
        assert answer.status_code == 200
        assert slack.fake.ephemerals(ALICE) == []  # the log is work: it has not run yet
    await slack.settle_clicks()  # idle() sees the lazy listener's task
    [shown] = slack.fake.ephemerals(ALICE)
    assert "Integration log" in shown.args["text"]
