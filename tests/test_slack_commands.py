"""The slash command and the App Home through signed requests against the fake Slack."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.sandbox.books import SandboxBooks
from storage.models import Activity, Mapping, Posting
from tests.slack_harness import (
    ALICE,
    CHANNEL,
    MALLORY,
    FakeSlack,
    SlackHarness,
    click_body,
    signed_headers,
    slack_harness,
)
from tests.support import FakeClock, bill, eventually


@dataclass
class ResponseUrls:
    """Where ``respond()`` posts follow-up answers: the stand-in's response_url hooks."""

    fake: FakeSlack

    @property
    def answers(self) -> list[dict[str, Any]]:
        """What the bot posted to them, in order (taken or not)."""
        return [c.args for c in self.fake.calls if c.method == "response_url"]


@pytest.fixture
def responses(slack: SlackHarness) -> ResponseUrls:
    return ResponseUrls(slack.fake)


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        yield h


async def command(h: SlackHarness, text: str, urls: ResponseUrls, *, user: str = ALICE) -> httpx.Response:
    form = {
        "token": "unused",
        "team_id": "T0TEAM",
        "channel_id": CHANNEL,
        "channel_name": "finance",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/ledger",
        "text": text,
        "api_app_id": "A0APP",
        "response_url": h.fake.response_url(user, CHANNEL),
        "trigger_id": h.fake.trigger(user),
    }
    body = urllib.parse.urlencode(form)
    return await h.http.post("/slack/events", content=body, headers=signed_headers(body))


def shown(answer: dict[str, Any]) -> str:
    return json.dumps(answer, ensure_ascii=False)


async def fail_some(h: SlackHarness) -> None:
    await h.ingest(bill("B-1", category="Travel"), bill("B-2", category="Travel"), bill("B-3"))
    await h.runtime.worker.run_until_idle()


async def test_status_answers_privately_with_counts(slack: SlackHarness, responses: ResponseUrls) -> None:
    await fail_some(slack)
    answer = await command(slack, "status", responses)
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    assert "books-dk" in shown(body) and "failed *2*" in shown(body)
    assert "1 open error group" in shown(body)


async def test_attention_groups_failures_with_resync_all(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await fail_some(slack)
    body = (await command(slack, "attention", responses)).json()
    assert "2 postings" in shown(body) and "Travel" in shown(body)
    assert "ledgerops.resync_group" in shown(body)


async def test_log_of_a_document_newest_first(slack: SlackHarness, responses: ResponseUrls) -> None:
    await fail_some(slack)
    body = (await command(slack, "log bill:B-1", responses)).json()
    assert "Travel" in shown(body)
    unknown = (await command(slack, "log nothing-like-it", responses)).json()
    assert "No document 'nothing-like-it'" in shown(unknown) and "Usage" in shown(unknown)


async def test_unknown_input_answers_with_usage_and_changes_nothing(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    body = (await command(slack, "frobnicate now", responses)).json()
    assert "unknown command" in shown(body) and "resync" in shown(body)
    body = (await command(slack, 'map category "Travel" 12ab', responses)).json()
    assert "not an account number" in shown(body)
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Mapping)) == 0


async def test_map_fixes_the_group_and_requeues(slack: SlackHarness, responses: ResponseUrls) -> None:
    await fail_some(slack)
    ack = await command(slack, 'map category "Travel" 2750', responses)
    assert "Working on it" in shown(ack.json())
    await slack.settle_clicks()
    assert "2 failed postings queued again" in shown(responses.answers[-1])
    await slack.runtime.worker.run_until_idle()
    async with slack.runtime.db.sessions() as s:
        states = (await s.scalars(select(Posting.state))).all()
    assert set(states) == {"synced"}
    status = (await command(slack, "status", responses)).json()
    assert "Mappings set in Slack" in shown(status) and "Travel" in shown(status)


async def test_changing_command_refused_for_a_user_not_allowed(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    await fail_some(slack)
    ack = await command(slack, "pause books-dk", responses, user=MALLORY)
    assert "not allowed" in shown(ack.json())  # the refusal is the acknowledgement itself
    await slack.settle_clicks()
    assert responses.answers == []
    async with slack.runtime.db.sessions() as s:
        refused = await s.scalar(
            select(func.count()).select_from(Activity).where(Activity.outcome == "refused")
        )
    assert refused == 1
    await command(slack, "pause books-dk", responses)
    await slack.settle_clicks()
    assert "books-dk paused" in shown(responses.answers[-1])


async def test_resync_and_restart_of_one_document(
    slack: SlackHarness, responses: ResponseUrls, sandbox_books: SandboxBooks
) -> None:
    await fail_some(slack)
    await command(slack, "resync B-3 payment", responses)
    await slack.settle_clicks()
    assert "not paid" in shown(responses.answers[-1])
    await command(slack, "restart B-3", responses)
    await slack.settle_clicks()
    assert "queued" in shown(responses.answers[-1])
    await slack.runtime.worker.run_until_idle()
    assert len(sandbox_books["books-dk"].vouchers) == 1  # updated in place, not created again


async def test_bulk_resync_modal_counts_confirms_and_queues_once(
    slack: SlackHarness, responses: ResponseUrls
) -> None:
    events = [bill(f"M-{i}", category="Travel") for i in range(1000)]
    for start in range(0, 1000, 500):
        await slack.ingest(*events[start : start + 500])
    await slack.runtime.worker.run_until_idle()
    await command(slack, "resync failed books-dk", responses)
    await slack.settle_clicks()
    [opened] = slack.fake.of("views.open")
    view = opened.args["view"] if isinstance(opened.args["view"], dict) else json.loads(opened.args["view"])
    assert "1,000 documents" in shown(view)
    submission = _submission(view, confirmed=False)
    refused = await _submit(slack, submission)
    assert refused.json()["response_action"] == "errors"
    submission = _submission(view, confirmed=True)
    first, second = await _submit(slack, submission), await _submit(slack, submission)
    assert first.status_code == second.status_code == 200
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        pending = await s.scalar(select(func.count()).select_from(Posting).where(Posting.state == "pending"))
    assert pending == 1000
    await slack.deliver(within=60)
    [progress] = slack.fake.posts()
    assert "1,000 postings queued" in slack.fake.text_of(slack.fake.ts_of(progress))


def _submission(view: dict[str, Any], *, confirmed: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "integration": {
            "ledgerops.bulk_filter": {"type": "static_select", "selected_option": {"value": "books-dk"}}
        },
        "states": {
            "ledgerops.bulk_filter": {
                "type": "multi_static_select",
                "selected_options": [{"value": "failed"}],
            }
        },
        "confirm": {
            "confirm": {"type": "checkboxes", "selected_options": [{"value": "yes"}] if confirmed else []}
        },
    }
    return {
        "type": "view_submission",
        "team": {"id": "T0TEAM"},
        "user": {"id": ALICE, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "view": {**view, "id": "V0BULK", "state": {"values": values}, "hash": "h"},
    }


async def _submit(h: SlackHarness, payload: dict[str, Any]) -> httpx.Response:
    body = "payload=" + urllib.parse.quote(json.dumps(payload))
    return await h.http.post("/slack/events", content=body, headers=signed_headers(body))


async def test_home_tab_shows_status_and_pause(slack: SlackHarness) -> None:
    await fail_some(slack)
    event = {
        "token": "unused",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1790000000,
        "event": {
            "type": "app_home_opened",
            "user": ALICE,
            "channel": "D0HOME",
            "tab": "home",
            "event_ts": "1790000000.1",
        },
    }
    body = json.dumps(event)
    headers = {**signed_headers(body), "Content-Type": "application/json"}
    answer = await slack.http.post("/slack/events", content=body, headers=headers)
    assert answer.status_code == 200
    await eventually(lambda: _published(slack), message="home published")
    [published] = slack.fake.of("views.publish")
    view = published.args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert "books-dk" in shown(view) and "ledgerops.pause" in shown(view)
    assert "Needs attention" in shown(view)


async def _published(h: SlackHarness) -> bool:
    return bool(h.fake.of("views.publish"))


async def test_queue_help_and_resume(slack: SlackHarness, responses: ResponseUrls) -> None:
    await slack.ingest(bill("Q-1"), bill("Q-2"))
    body = (await command(slack, "queue", responses)).json()
    assert "books-dk" in shown(body) and "2 queued" in shown(body)
    assert "retry due postings" in shown(body)  # what each scheduled job does
    body = (await command(slack, "help", responses)).json()
    assert "history" in shown(body) and "map category" in shown(body)
    await command(slack, "pause books-dk", responses)
    await slack.settle_clicks()
    await command(slack, "resume books-dk", responses)
    await slack.settle_clicks()
    assert "books-dk resumed" in shown(responses.answers[-1])
    await command(slack, "resume nowhere", responses)
    await slack.settle_clicks()
    assert "No integration named 'nowhere'" in shown(responses.answers[-1])


async def test_history_asks_with_the_count_then_transfers(
    db_url: str, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    from datetime import date

    from bot.config import SlackConfig
    from tests.slack_harness import USERGROUP
    from tests.support import make_config, sandbox_integration

    config = make_config(
        sandbox_integration(history_start=date(2026, 11, 1)),
        slack=SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP),
    )
    async with slack_harness(db_url, clock, config=config, sandbox_books=sandbox_books) as h:
        responses = ResponseUrls(h.fake)
        await h.ingest(bill("H-1", date="2026-10-05"), bill("H-2", date="2026-09-05"))
        await command(h, "history books-dk --since 2026-10-01", responses)
        await h.settle_clicks()
        ask = responses.answers[-1]
        assert "1 posting" in shown(ask) and "ledgerops.confirm_history" in shown(ask)
        value = next(e["value"] for b in ask["blocks"] if b["type"] == "actions" for e in b["elements"])
        payload = json.loads(
            urllib.parse.unquote(
                click_body("ledgerops.confirm_history", value, user=ALICE).removeprefix("payload=")
            )
        )
        payload["response_url"] = h.fake.response_url(ALICE, CHANNEL)
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        await h.http.post("/slack/events", content=body, headers=signed_headers(body))
        await h.settle_clicks()
        await eventually(lambda: _answered(responses, "queued for transfer"), message="history confirmed")
        async with h.runtime.db.sessions() as s:
            states = dict((await s.execute(select(Posting.document_id, Posting.state))).all())
        assert sorted(states.values()) == ["pending", "waiting"]


async def _answered(urls: ResponseUrls, text: str) -> bool:
    return any(text in shown(a) for a in urls.answers)
