"""Issue 12 (8, 11, 12): commands take the numbers people see; the team sees team changes;
help, punctuation, the Ignore confirm, the App Home's jobs and About. Signed Slack requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.sandbox.books import SandboxBooks
from tests.slack_harness import ALICE, SlackHarness, signed_headers, slack_harness
from tests.support import FakeClock, bill, eventually
from tests.test_slack_commands import ResponseUrls, command, shown


@pytest.fixture
def responses(slack: SlackHarness) -> ResponseUrls:
    return ResponseUrls(slack.fake)


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        yield h


KONTORLAND = {"number": 3001, "name": "Kontorland A/S"}
DHL = {"number": 3002, "name": "DHL Express"}


async def two_suppliers(h: SlackHarness) -> None:
    """Two suppliers both number an invoice INV-1005; a third bill fails on its category."""
    await h.ingest(
        bill("B-1005", invoice_number="INV-1005", supplier=KONTORLAND, amount="742.50"),
        bill("B-2005", invoice_number="INV-1005", supplier=DHL, amount="99.00"),
        bill("B-3001", invoice_number="INV-3001", supplier=DHL, amount="310.00", category="Travel"),
    )
    await h.runtime.worker.run_until_idle()


# -- 8. identifiers ----------------------------------------------------------------------------


async def test_log_takes_the_invoice_number_the_message_shows(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await two_suppliers(slack)
    body = shown((await command(slack, "log INV-3001", responses)).json())
    assert "Integration log" in body and "DHL Express" in body
    assert "Integration log" in shown((await command(slack, "log bill:INV-3001", responses)).json())
    assert "Integration log" in shown((await command(slack, "log inv-3001", responses)).json())
    assert "Integration log" in shown((await command(slack, "log B-3001", responses)).json())


async def test_a_near_miss_answers_did_you_mean(slack: SlackHarness, responses: ResponseUrls) -> None:
    await two_suppliers(slack)
    body = shown((await command(slack, "log INV-3011", responses)).json())
    assert "No document 'INV-3011'" in body and "Did you mean `INV-3001`?" in body
    assert "try bill:" not in body


async def test_two_matches_offer_a_choice_with_supplier_and_amount(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await two_suppliers(slack)
    body = shown((await command(slack, "log INV-1005", responses)).json())
    assert "2 documents match 'INV-1005'" in body
    assert "Kontorland A/S · INV-1005 · 742.50 DKK" in body and "DHL Express · INV-1005 · 99.00 DKK" in body
    exact = next(p for p in body.split("`") if p.startswith("/ledger log") and "B-2005" in p)
    chosen = shown((await command(slack, exact.removeprefix("/ledger "), responses)).json())
    assert "Integration log" in chosen and "DHL Express" in chosen


async def test_resync_takes_the_invoice_number(slack: SlackHarness, responses: ResponseUrls) -> None:
    await two_suppliers(slack)
    await command(slack, "resync INV-3001", responses)
    await slack.settle_clicks()
    assert "No document" not in shown(responses.answers[-1])
    assert "queued" in shown(responses.answers[-1]).lower()


async def test_attention_shows_supplier_and_amount(slack: SlackHarness, responses: ResponseUrls) -> None:
    await two_suppliers(slack)
    body = shown((await command(slack, "attention", responses)).json())
    assert "DHL Express · INV-3001 · 310.00 DKK" in body
    assert "bill B-3001" not in body


# -- 12. smaller ------------------------------------------------------------------------------


async def test_help_says_what_each_command_does(slack: SlackHarness, responses: ResponseUrls) -> None:
    body = shown((await command(slack, "help", responses)).json())
    assert "Stop sending to an integration" in body and "Who did what" in body
    assert "/ledger activity" in body


async def test_no_doubled_stop_in_a_usage_answer(slack: SlackHarness, responses: ResponseUrls) -> None:
    body = shown((await command(slack, "pause", responses)).json())
    assert "which integration?" in body
    assert "?." not in body and ".." not in body.replace("…", "")
