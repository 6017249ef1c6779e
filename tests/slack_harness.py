"""ledgerops driven through the Slack stand-in's Web API on loopback (``tests/fakes/slack.py``).

The harness runs the real ledgerops aiohttp application on a loopback port and
sends it requests signed the way Slack signs them
(``slack_sdk.signature.SignatureVerifier``).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from aiohttp import web
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from app import build_runtime
from bot.config import SlackConfig
from bot.local_slack.faults import Planned
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from handlers.routes import build_web_app
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from tests.fakes.slack import ALICE, BOB, BOT_TOKEN, MALLORY, USERGROUP, FakeSlack
from tests.support import FakeClock, make_config, make_env

__all__ = ["ALICE", "BOB", "BOT_TOKEN", "MALLORY", "USERGROUP", "FakeSlack", "Planned"]

SIGNING_SECRET = "test-signing-secret"
CHANNEL = "C0FINANCE"
#: what a click names as its message when no message was posted yet
NO_MESSAGE_TS = "1790000001.000100"


# -- signed requests ---------------------------------------------------------------------------


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with a request body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def click_body(
    action_id: str,
    value: str,
    *,
    user: str,
    channel: str = CHANNEL,
    message_ts: str = NO_MESSAGE_TS,
    trigger_id: str = "1234.5678.abcd",
    response_url: str = "https://hooks.slack.invalid/actions/T0TEAM/1/x",
) -> str:
    """A ``block_actions`` payload as Slack posts it for a button press."""
    payload = {
        "type": "block_actions",
        "api_app_id": "A0APP",
        "token": "unused",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "finance"},
        "is_enterprise_install": False,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel, "name": "finance"},
        "trigger_id": trigger_id,
        "message": {"type": "message", "ts": message_ts, "text": "…"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b",
                "value": value,
                "text": {"type": "plain_text", "text": "button"},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return "payload=" + urllib.parse.quote(json.dumps(payload))


@dataclass
class SlackHarness:
    """ledgerops with Slack on loopback: the runtime, its HTTP server and the fake Slack."""

    runtime: Runtime
    fake: FakeSlack
    http: httpx.AsyncClient
    clock: FakeClock

    @property
    def notifier(self) -> Any:
        assert self.runtime.notifier is not None
        return self.runtime.notifier

    async def ingest(self, *events: dict[str, Any]) -> None:
        valid, errors = validate_batch({"events": list(events)}, set(self.runtime.engine.integrations))
        assert not errors, errors
        await ingest_batch(self.runtime.engine, valid)

    async def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str = ALICE,
        message_ts: str | None = None,
        answer_here: bool = False,
    ) -> httpx.Response:
        """Press a button the way Slack reports it (on ``message_ts``; by default the first post).

        ``answer_here``: the click's ``response_url`` is the stand-in's, so what the bot
        ``respond()``s shows (a ``response_url`` call); by default it leads nowhere."""
        if message_ts is None:
            posted = [c for c in self.fake.calls if c.method == "chat.postMessage" and c.result.get("ts")]
            message_ts = self.fake.ts_of(posted[0]) if posted else NO_MESSAGE_TS
        trigger = self.fake.trigger(user)
        extra = {"response_url": self.fake.response_url(user)} if answer_here else {}
        body = click_body(action_id, value, user=user, message_ts=message_ts, trigger_id=trigger, **extra)
        return await self.http.post("/slack/events", content=body, headers=signed_headers(body))

    async def press_button(self, ts: str, action_id: str, *, user: str = ALICE) -> httpx.Response:
        """Press a button shown on the message ``ts`` (its value comes from the message)."""
        value = next(
            e["value"]
            for b in self.fake.messages[ts]["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == action_id
        )
        return await self.press(action_id, value, user=user, message_ts=ts)

    async def settle_clicks(self) -> None:
        """Wait for the work every click started."""
        assert self.runtime.slack is not None
        await self.runtime.slack.idle()

    async def deliver(self, *, within: float = 3600.0) -> None:
        """Send what the outbox holds, moving the test clock over waits (window, pace, backoff).

        Stops when nothing is due any more or ``within`` seconds of test time have passed.
        """
        deadline = self.clock() + _seconds(within)
        for _ in range(10_000):
            report = await self.notifier.flush()
            if report.next_due is None or report.next_due > deadline:
                return
            if report.next_due > self.clock():
                self.clock.now = report.next_due


def _seconds(s: float) -> timedelta:
    return timedelta(seconds=s)


@asynccontextmanager
async def slack_harness(
    db_url: str,
    clock: FakeClock,
    *,
    start: bool = False,
    config: Any = None,
    sandbox_books: SandboxBooks | None = None,
) -> AsyncIterator[SlackHarness]:
    """Fake Slack + ledgerops (``start``: worker, notifier and bolt running in the background;
    ``sandbox_books``: the test's sandbox ledgers)."""
    config = config or make_config(
        slack=SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP)
    )
    channels = [config.slack.channel or CHANNEL, *(i.channel for i in config.integrations if i.channel)]
    fake = FakeSlack(BOT_TOKEN, channels, clock)
    await fake.start()
    env = make_env(
        db_url,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=fake.url,
    )
    runtime = await build_runtime(env, config, migrate=False, clock=clock, sandbox_books=sandbox_books)
    runner = web.AppRunner(build_web_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    if start:
        await runtime.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield SlackHarness(runtime, fake, http, clock)
    finally:
        await runner.cleanup()
        await runtime.close()
        await fake.stop()
