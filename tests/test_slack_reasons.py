"""Whose words a failure message shows, and what a payroll failure says in money.

Through signed Slack requests on loopback with the fake Slack: the ledger's
answers under "The ledger says:", ledgerops' own reasons (an unmapped category,
giving up, a test company) under "Why:", a journal's debit and credit totals,
its difference, its cost centres and units, and a run booked in part.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bot.actions import ActionId
from bot.local_slack.ledger_panel import LedgerPanel
from connectors.sandbox.books import SandboxBooks
from tests.slack_harness import SlackHarness, slack_harness
from tests.support import FakeClock, bill, eventually


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        assert h.runtime.notifier is not None
        await h.runtime.notifier.start()
        yield h


def payroll(*, credit_nov: str = "-51990.00", company_is_test: bool = False) -> dict[str, Any]:
    """Run 2026-11 with an October correction; November's credits are 10.00 short."""
    lines = [
        {
            "account": "4000",
            "amount": "52000.00",
            "period": "2026-11",
            "cost_center": "CPH",
            "cost_unit": "Sales",
        },
        {"account": "6900", "amount": credit_nov, "period": "2026-11", "cost_center": "AAR"},
        {"account": "4000", "amount": "1200.00", "period": "2026-10", "text": "Overtime Oct"},
        {"account": "6900", "amount": "-1200.00", "period": "2026-10"},
    ]
    data = {"run": "2026-11", "date": "2026-11-25", "company_is_test": company_is_test, "lines": lines}
    return {
        "source": "payroll",
        "kind": "payroll_run",
        "id": "RUN-2026-11",
        "version": 1,
        "integration": "books-dk",
        "data": data,
    }


async def _only_post(h: SlackHarness) -> str:
    await h.runtime.worker.run_until_idle()
    await h.deliver()
    [post] = h.fake.posts()
    return h.fake.ts_of(post)


async def test_unbalanced_journal_shows_totals_difference_dimensions_and_a_partly_booked_run(
    slack: SlackHarness,
) -> None:
    await slack.ingest(payroll())
    ts = await _only_post(slack)
    shown = slack.fake.text_of(ts)
    assert "journal (2026-11)" in shown
    for fact in (
        "*Debits*\\n52,000.00",
        "*Credits*\\n51,990.00",
        "*Difference*\\n10.00",
        "*Cost centres*\\nAAR, CPH",
        "*Cost units*\\nSales",
        "debits 52,000.00, credits 51,990.00, difference 10.00",  # the ledger's own answer
        "1 of 2 periods posted (2026-10); 2026-11 failed.",
    ):
        assert fact in shown, fact
    # the journal that went through shows its debit total in the sandbox ledger panel
    panel = LedgerPanel(slack.runtime)
    [voucher] = panel._ledger_view("books-dk")["vouchers"]
    assert voucher["kind"] == "journal" and voucher["amount"] == "1,200.00"
    assert slack.runtime.sandbox_books["books-dk"].vouchers[voucher["ref"]].amount == Decimal("1200.00")


async def test_a_ledgerops_reason_is_not_labelled_as_the_ledgers(slack: SlackHarness) -> None:
    await slack.ingest(bill("B-1", category="Travel"))
    ts = await _only_post(slack)
    shown = slack.fake.text_of(ts)
    assert "*Why:*\\nledgerops: The category 'Travel' has no account mapping" in shown
    assert "The ledger says" not in shown


async def test_the_ledgers_answer_is_labelled_as_the_ledgers(slack: SlackHarness) -> None:
    slack.runtime.engine.connector("books-dk")
    slack.runtime.sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("B-2"))
    ts = await _only_post(slack)
    shown = slack.fake.text_of(ts)
    assert "*The ledger says:*\\n>Account 2800 does not exist." in shown and "*Why:*" not in shown


async def test_giving_up_is_ledgerops_words_and_a_manual_resync_says_what_failed_now(
    slack: SlackHarness, clock: FakeClock
) -> None:
    slack.runtime.engine.connector("books-dk")
    slack.runtime.sandbox_books["books-dk"].switches.outage = True
    await slack.ingest(bill("B-3"))
    policy = slack.runtime.engine.policy
    for _ in range(policy.max_attempts):
        await slack.runtime.worker.run_until_idle()
        clock.advance(policy.max_seconds * 2)
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    shown = slack.fake.text_of(ts)
    assert f"ledgerops stopped trying after {policy.max_attempts} attempts" in shown
    # the ledger said nothing: the text is ledgerops' description, never "the ledger says"
    assert "What ledgerops saw: Could not connect to the ledger" in shown
    assert "The ledger says" not in shown and "Gave up after" not in shown

    await slack.press_button(ts, ActionId.RESYNC_INVOICE)  # the ledger is still down
    await slack.settle_clicks()
    await slack.runtime.worker.run_until_idle()

    async def failed_again() -> bool:
        await slack.deliver()
        return f"attempts: {policy.max_attempts + 1}" in slack.fake.text_of(ts)

    await eventually(failed_again, message="the message shows the manual attempt")
    shown = slack.fake.text_of(ts)
    assert "*Resync by <@U0ALICE> <!date^" in shown
    assert "failed.*\\n*Why:*\\nThe ledger did not answer. Resync when it is back." in shown
    assert "Gave up after" not in shown and "stopped trying" not in shown


async def test_a_test_companys_payroll_is_refused_with_only_ignore(slack: SlackHarness) -> None:
    await slack.ingest(payroll(credit_nov="-52000.00", company_is_test=True))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    assert slack.fake.posts()
    for post in slack.fake.posts():
        ts = slack.fake.ts_of(post)
        shown = slack.fake.text_of(ts)
        assert "is refused" in shown and "could not be posted" not in shown
        assert (
            "*Why:*\\nledgerops: Payroll run 2026-11 comes from a company marked as a test company" in shown
        )
        assert slack.fake.action_ids(ts) == [ActionId.SHOW_LOG, ActionId.IGNORE]
