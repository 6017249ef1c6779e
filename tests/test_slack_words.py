"""Issue 12 (8, 11, 12): commands take the numbers people see; the team sees team changes;
help, punctuation, the Ignore confirm, the App Home's jobs and About. Signed Slack requests."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import SlackConfig
from connectors.sandbox.books import SandboxBooks
from storage.models import Activity
from tests.slack_harness import ALICE, CHANNEL, SlackHarness, click_body, signed_headers, slack_harness
from tests.support import FakeClock, bill, eventually, make_config
from tests.test_payroll import payroll
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


async def press_on_answer(h: SlackHarness, action_id: str, value: str) -> None:
    """Press a button of a private answer: Slack gives it the answer's response_url."""
    body = click_body(action_id, value, user=ALICE)
    payload = json.loads(urllib.parse.unquote(body.removeprefix("payload=")))
    payload["response_url"] = h.fake.response_url(ALICE, CHANNEL)
    body = "payload=" + urllib.parse.quote(json.dumps(payload))
    answer = await h.http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 200


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


# -- 11. the team sees team changes --------------------------------------------------------------


def channel_texts(h: SlackHarness) -> list[str]:
    return [h.fake.text_of(ts) for ts in h.fake.messages if h.fake.messages[ts]["thread_ts"] is None]


async def test_pause_resume_and_map_are_announced_in_the_channel(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await two_suppliers(slack)
    await slack.deliver()
    before = len(channel_texts(slack))
    await command(slack, "pause books-dk", responses)
    await slack.settle_clicks()
    await command(slack, "pause books-dk", responses)  # already paused: nothing to announce
    await slack.settle_clicks()
    await command(slack, "resume books-dk", responses)
    await slack.settle_clicks()
    await command(slack, 'map category "Travel" 2750', responses)
    await slack.settle_clicks()
    await slack.deliver()
    told = channel_texts(slack)[before:]
    assert len(told) == 3, told
    assert f"<@{ALICE}> paused *books-dk*" in told[0] and "nothing queued is lost" in told[0]
    assert f"<@{ALICE}> resumed *books-dk*" in told[1]
    assert f"<@{ALICE}> changed a mapping of *books-dk*: category “Travel” → 2750" in told[2]
    assert "1 failed posting queued again" in told[2]


async def test_activity_shows_who_did_what_paged(slack: SlackHarness, responses: ResponseUrls) -> None:
    await two_suppliers(slack)
    await command(slack, "resync INV-3001", responses)
    await slack.settle_clicks()
    for _ in range(11):
        await command(slack, "pause books-dk", responses)
        await slack.settle_clicks()
        await command(slack, "resume books-dk", responses)
        await slack.settle_clicks()
    first = (await command(slack, "activity --since 1d", responses)).json()
    body = shown(first)
    assert f"<@{ALICE}> resumed *books-dk*" in body and "page 1" in body
    assert "ledgerops.activity_page" in body
    value = next(e["value"] for b in first["blocks"] if b["type"] == "actions" for e in b["elements"])
    await press_on_answer(slack, "ledgerops.activity_page", value)
    await slack.settle_clicks()
    older = shown(responses.answers[-1])
    assert "page 2" in older
    assert "asked to resync *DHL Express · INV-3001 · 310.00 DKK*" in older
    future = shown((await command(slack, "activity --since 2099-01-01", responses)).json())
    assert "Nobody did anything since 2099-01-01" in future
    wrong = shown((await command(slack, "activity --since yesterday", responses)).json())
    assert "neither a date" in wrong


async def open_home(h: SlackHarness) -> dict[str, Any]:
    event = {
        "token": "unused",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": "Ev12",
        "event_time": 1790000000,
        "event": {"type": "app_home_opened", "user": ALICE, "channel": "D0HOME", "tab": "home"},
    }
    body = json.dumps(event)
    headers = {**signed_headers(body), "Content-Type": "application/json"}
    assert (await h.http.post("/slack/events", content=body, headers=headers)).status_code == 200
    await eventually(lambda: _published(h), message="home published")
    view = h.fake.of("views.publish")[-1].args["view"]
    return view if isinstance(view, dict) else json.loads(view)


async def _published(h: SlackHarness) -> bool:
    return bool(h.fake.of("views.publish"))


async def test_home_shows_supplier_jobs_and_about(
    db_url: str, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    config = make_config(
        slack=SlackConfig(
            channel=CHANNEL, allowed_users=[ALICE], readme_url="https://example.org/ledgerops#readme"
        )
    )
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books, config=config) as h:
        await two_suppliers(h)
        assert h.runtime.scheduler is not None
        h.runtime.scheduler.start()  # what a serving process runs: its jobs have a next run
        view = shown(await open_home(h))
    assert "DHL Express · INV-3001 · 310.00 DKK" in view
    assert "Scheduled jobs" in view and "retry due postings" in view and "next " in view
    assert "About ledgerops" in view and "<https://example.org/ledgerops#readme|Read the README>" in view


async def test_ignore_asks_with_a_danger_confirm(slack: SlackHarness) -> None:
    await two_suppliers(slack)
    await slack.deliver()
    [ts] = [t for t in slack.fake.messages if "INV-3001" in slack.fake.text_of(t)]
    [ignore] = [
        e
        for b in slack.fake.messages[ts]["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "ledgerops.ignore"
    ]
    assert ignore["confirm"]["style"] == "danger"


async def test_show_log_offers_the_resync_buttons_of_the_message(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await two_suppliers(slack)
    await slack.deliver()
    [ts] = [t for t in slack.fake.messages if "INV-3001" in slack.fake.text_of(t)]
    await slack.press_button(ts, "ledgerops.show_log")
    await slack.settle_clicks()
    shown_log = slack.fake.of("chat.postEphemeral")[-1].args
    blocks = shown_log["blocks"] if isinstance(shown_log["blocks"], list) else json.loads(shown_log["blocks"])
    buttons = {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"]}
    assert "Integration log" in shown(shown_log) and "ledgerops.resync_invoice" in buttons
    assert "ledgerops.ignore" not in buttons  # the log resyncs; ignoring stays on the message
    await slack.press("ledgerops.resync_invoice", buttons["ledgerops.resync_invoice"], message_ts=ts)
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        acts = (await s.scalars(select(Activity).where(Activity.action == "resync"))).all()
    assert [(a.actor, a.outcome) for a in acts] == [(ALICE, "ok")]
    queued = (await command(slack, "log INV-3001", responses)).json()
    assert "ledgerops.resync_invoice" not in shown(queued)  # on its way: nothing to press
    await slack.runtime.worker.run_until_idle()  # fails again on the unmapped category
    command_log = (await command(slack, "log INV-3001", responses)).json()
    assert "ledgerops.resync_invoice" in shown(command_log)


async def test_a_payroll_run_is_named_by_its_run_id(slack: SlackHarness, responses: ResponseUrls) -> None:
    await slack.ingest(payroll())
    await slack.runtime.worker.run_until_idle()
    for ref in ("2026-11", "RUN-2026-11", "payroll:2026-11", "payroll/payroll_run/RUN-2026-11"):
        body = shown((await command(slack, f"log {ref}", responses)).json())
        assert "Integration log* of payroll run 2026-11" in body, ref


async def test_bulk_picker_shows_supplier_and_amount(slack: SlackHarness, responses: ResponseUrls) -> None:
    await two_suppliers(slack)
    await command(slack, "resync failed books-dk", responses)
    await slack.settle_clicks()
    [opened] = slack.fake.of("views.open")
    view = shown(
        opened.args["view"] if isinstance(opened.args["view"], dict) else json.loads(opened.args["view"])
    )
    assert "DHL Express · INV-3001 · 310.00 DKK" in view and "bill B-3001" not in view
