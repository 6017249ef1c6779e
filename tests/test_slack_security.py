"""Only Slack, signing with our secret and recently, gets through ``/slack/events``."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from app import build_runtime
from bot.actions import ActionId, PostingRef
from bot.config import ConfigError
from handlers.routes import build_web_app
from storage.models import Activity, Integration, Posting
from tests.slack_harness import (
    ALICE,
    BOT_TOKEN,
    SlackHarness,
    click_body,
    signed_headers,
    slack_harness,
)
from tests.support import FakeClock, bill, eventually, make_config, make_env


@pytest.fixture
async def slack(db_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, start=True) as h:
        await h.ingest(bill("S-1", category="Travel"))  # fails: no mapping
        await h.runtime.worker.run_until_idle()
        await eventually(lambda: _failed(h), message="S-1 failed")  # the background worker may hold it
        yield h


async def _failed(h: SlackHarness) -> bool:
    async with h.runtime.db.sessions() as s:
        return (await s.scalar(select(Posting.state))) == "failed"


async def nothing_changed(h: SlackHarness) -> None:
    async with h.runtime.db.sessions() as s:
        assert (await s.scalar(select(Posting.state))) == "failed"
        assert await s.scalar(select(func.count()).select_from(Activity)) == 0
    assert h.fake.of("chat.postEphemeral") == []


async def a_click(h: SlackHarness) -> str:
    async with h.runtime.db.sessions() as s:
        p = (await s.scalars(select(Posting))).one()
    return click_body(
        ActionId.RESYNC_INVOICE, PostingRef(document=p.document_id, posting=p.id).value(), user=ALICE
    )


async def test_forged_signature_is_refused(slack: SlackHarness) -> None:
    body = await a_click(slack)
    forged = signed_headers(body, secret="not-the-secret")
    answer = await slack.http.post("/slack/events", content=body, headers=forged)
    assert answer.status_code == 401
    tampered = signed_headers(body)
    answer = await slack.http.post(
        "/slack/events", content=body.replace("U0ALICE", "U0EVE"), headers=tampered
    )
    assert answer.status_code == 401
    unsigned = await slack.http.post(
        "/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert unsigned.status_code == 401
    await slack.settle_clicks()
    await nothing_changed(slack)


async def test_request_older_than_five_minutes_is_refused(slack: SlackHarness) -> None:
    body = await a_click(slack)
    replayed = signed_headers(body, timestamp=int(time.time()) - 5 * 60 - 10)
    answer = await slack.http.post("/slack/events", content=body, headers=replayed)
    assert answer.status_code == 401
    await slack.settle_clicks()
    await nothing_changed(slack)


async def test_a_properly_signed_click_gets_through(slack: SlackHarness) -> None:
    body = await a_click(slack)
    answer = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 200
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(Activity.actor)) == ALICE


async def test_http_mode_needs_a_signing_secret(db_url: str, clock: FakeClock) -> None:
    env = make_env(db_url, slack_bot_token=SecretStr(BOT_TOKEN))
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET"):
        await build_runtime(env, make_config(), migrate=False, clock=clock)


async def test_socket_mode_mounts_no_http_route(db_url: str, clock: FakeClock) -> None:
    env = make_env(db_url, slack_bot_token=SecretStr(BOT_TOKEN), slack_app_token=SecretStr("xapp-1-test"))
    runtime = await build_runtime(env, make_config(), migrate=False, clock=clock)
    try:
        assert runtime.slack is not None and not runtime.slack.http_mode
        app = build_web_app(runtime)
        assert "/slack/events" not in {
            r.resource.canonical for r in app.router.routes() if r.resource is not None
        }
        assert runtime.slack.listeners_registered
    finally:
        await runtime.close()


async def test_nobody_may_act_until_someone_is_named(slack: SlackHarness) -> None:
    from bot.auth import Gatekeeper
    from bot.config import SlackConfig

    closed = Gatekeeper(
        SlackConfig(channel="C0FINANCE"),
        slack.runtime.slack.client,  # type: ignore[union-attr]
        slack.clock,
    )
    assert not await closed.allows(ALICE)
    assert "allowed_users" in closed.ask()
    slack.fake.usergroups.clear()  # the user group cannot be read: members are not assumed
    gate = Gatekeeper(
        SlackConfig(channel="C0FINANCE", allowed_users=[ALICE], allowed_usergroup="S0FINANCE"),
        slack.runtime.slack.client,  # type: ignore[union-attr]
        slack.clock,
    )
    assert await gate.allows(ALICE) and not await gate.allows("U0BOB")


def test_manifest_declares_what_the_contract_says() -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "manifest.yml").read_text(encoding="utf-8")
    for needle in (
        "- chat:write",
        "- channels:history",
        "- groups:history",
        "- commands",
        "- users:read",
        "- usergroups:read",
        "command: /ledger",
        "interactivity:",
        "is_enabled: true",
        "home_tab_enabled: true",
        "- app_home_opened",
        "/slack/events",
    ):
        assert needle in text, needle


def _with_payload(body: str, **changes: Any) -> str:
    payload = json.loads(urllib.parse.unquote(body.removeprefix("payload=")))
    payload.update(changes)
    return "payload=" + urllib.parse.quote(json.dumps(payload))


async def _post(h: SlackHarness, body: str, *, content_type: str | None = None) -> int:
    headers = signed_headers(body)
    if content_type:
        headers["Content-Type"] = content_type
    return (await h.http.post("/slack/events", content=body, headers=headers)).status_code


async def test_start_up_learns_the_workspace_of_the_bot_token(slack: SlackHarness) -> None:
    assert slack.fake.of("auth.test")
    assert slack.runtime.slack is not None and slack.runtime.slack.team_id == "T0TEAM"


async def test_a_request_from_another_workspace_is_ignored(slack: SlackHarness) -> None:
    other = {"id": "T0OTHER", "domain": "elsewhere"}
    click = _with_payload(await a_click(slack), team=other)
    assert await _post(slack, click) == 200
    command = urllib.parse.urlencode(
        {
            "team_id": "T0OTHER",
            "channel_id": "C0FINANCE",
            "user_id": ALICE,
            "command": "/ledger",
            "text": "pause books-dk",
            "response_url": "http://127.0.0.1:9/respond",
            "trigger_id": "1.2.3",
        }
    )
    answer = await slack.http.post("/slack/events", content=command, headers=signed_headers(command))
    assert answer.status_code == 200 and "paused" not in answer.text and "Working" not in answer.text
    view = {
        "type": "view_submission",
        "team": other,
        "user": {"id": ALICE},
        "view": {
            "id": "V0X",
            "type": "modal",
            "callback_id": "ledgerops.bulk_resync",
            "state": {"values": {}},
            "private_metadata": json.dumps({"channel": "C0FINANCE"}),
        },
    }
    submission = "payload=" + urllib.parse.quote(json.dumps(view))
    assert await _post(slack, submission) == 200
    event = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T0OTHER",
            "event_id": "Ev9",
            "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"},
        }
    )
    assert await _post(slack, event, content_type="application/json") == 200
    no_team = _with_payload(await a_click(slack), team=None)
    assert await _post(slack, no_team) == 200
    await slack.settle_clicks()
    await nothing_changed(slack)
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(Integration.paused)) is False
    assert slack.fake.of("views.publish") == [] and slack.fake.of("chat.postMessage") == []


async def test_a_replayed_request_runs_only_once(slack: SlackHarness) -> None:
    body = await a_click(slack)
    headers = signed_headers(body)
    first = await slack.http.post("/slack/events", content=body, headers=headers)
    again = await slack.http.post("/slack/events", content=body, headers=headers)
    assert first.status_code == again.status_code == 200 and again.text == ""
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Activity)) == 1
    other = await a_click(slack)  # another click in the same second is not a replay
    assert other != body and await _post(slack, other) == 200
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Activity)) == 2


async def test_a_forged_request_is_logged_in_one_line_without_its_body(
    db_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as `serve` logs (bolt copies the level when it is built)
    async with slack_harness(db_url, clock) as h:
        secret_url = "https://hooks.slack.com/actions/T0TEAM/42/very-secret-response-url"
        body = _with_payload(click_body(ActionId.IGNORE, "{}", user=ALICE), response_url=secret_url)
        forged = signed_headers(body, secret="not-the-secret")
        answer = await h.http.post("/slack/events", content=body, headers=forged)
        assert answer.status_code == 401
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        for needle in ("very-secret-response-url", "very-secret", "U0ALICE"):
            assert needle not in text, record.getMessage()
    refusals = [r for r in caplog.records if "signature" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.WARNING
