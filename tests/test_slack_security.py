"""Only Slack, signing with our secret and recently, gets through ``/slack/events``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.blocks import ActionId, button_value
from bot.config import ConfigError
from bot.runtime import Runtime
from handlers.routes import build_web_app
from storage.models import Activity, Posting
from tests.fakes.slack_api import (
    ALICE,
    BOT_TOKEN,
    SlackHarness,
    click_body,
    signed_headers,
    slack_harness,
)
from tests.support import FakeClock, bill, make_config, make_env


@pytest.fixture
async def slack(db_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, start=True) as h:
        await h.ingest(bill("S-1", category="Travel"))  # fails: no mapping
        await h.runtime.worker.run_until_idle()
        yield h


async def nothing_changed(h: SlackHarness) -> None:
    async with h.runtime.db.sessions() as s:
        assert (await s.scalar(select(Posting.state))) == "failed"
        assert await s.scalar(select(func.count()).select_from(Activity)) == 0
    assert h.fake.of("chat.postEphemeral") == []


async def a_click(h: SlackHarness) -> str:
    async with h.runtime.db.sessions() as s:
        p = (await s.scalars(select(Posting))).one()
    return click_body(ActionId.RESYNC_INVOICE, button_value(document=p.document_id, posting=p.id), user=ALICE)


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
        await Runtime.create(env, make_config(), migrate=False, clock=clock)


async def test_socket_mode_mounts_no_http_route(db_url: str, clock: FakeClock) -> None:
    env = make_env(db_url, slack_bot_token=SecretStr(BOT_TOKEN), slack_app_token=SecretStr("xapp-1-test"))
    runtime = await Runtime.create(env, make_config(), migrate=False, clock=clock)
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
    gate = slack.runtime.slack.gatekeeper  # type: ignore[union-attr]
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
