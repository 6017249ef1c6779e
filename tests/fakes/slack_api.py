"""A fake Slack Web API on loopback, and a harness that drives ledgerops through it.

The fake records every call and keeps the channel's messages (so a test reads
what a person would see), with their message ``metadata``, which
``conversations.history`` returns with ``include_all_metadata``. It can answer
429 with ``Retry-After``, ``ok: false``, answer 500 before or after storing a
post (a lost answer), break for a spell (:meth:`FakeSlack.break_for`), or be
down altogether (connection refused, or 503 on a connection that was already open).

The harness runs the real ledgerops aiohttp application on a loopback port and
sends it requests signed the way Slack signs them
(``slack_sdk.signature.SignatureVerifier``).
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from aiohttp import web
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from app import build_runtime
from bot.config import SlackConfig
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from handlers.routes import build_web_app
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from tests.support import FakeClock, make_config, make_env

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0FINANCE"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
USERGROUP = "S0FINANCE"


@dataclass
class Call:
    """One Web API call as the fake received it."""

    method: str
    args: dict[str, Any]
    at: datetime | None  # the test clock's time, to check pacing and backoff
    status: int = 200
    #: Slack did it and said so (a lost answer counts as not ok, though it was done)
    ok: bool = False
    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class Planned:
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    do_it: bool = False  # do the work, then answer with ``status`` (a lost answer)


@dataclass
class Spell:
    """Slack is broken for a while: every call answers ``status``.

    ``stores(n)`` says whether the ``n``-th ``chat.postMessage`` of the spell
    (from 0) is stored before the error answer ("500 after storing") or not
    ("500 before storing").
    """

    status: int = 500
    stores: Callable[[int], bool] = lambda n: False
    posts: int = 0


@dataclass
class FakeSlack:
    """The subset of the Web API ledgerops uses."""

    clock: Callable[[], datetime] | None = None
    calls: list[Call] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message
    usergroups: dict[str, list[str]] = field(default_factory=lambda: {USERGROUP: [BOB]})
    down: bool = False
    spell: Spell | None = None
    #: the test clock's time of each message (``conversations.history``'s ``oldest`` filters on it)
    posted_at: dict[str, float] = field(default_factory=dict)
    _plans: dict[str, list[Planned]] = field(default_factory=dict)
    _ts: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._handle)
        app.router.add_get("/api/{method}", self._handle)  # slack_sdk reads some with GET
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def go_down(self) -> None:
        """Refuse new connections; answer 503 on any still open."""
        self.down = True
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def come_back(self) -> None:
        self.down = False
        await self._listen()

    def break_for(self, *, status: int = 500, stores: Callable[[int], bool] = lambda n: False) -> None:
        """Answer every call with ``status`` until :meth:`mend`; see :class:`Spell`."""
        self.spell = Spell(status, stores)

    def mend(self) -> None:
        self.spell = None

    def plan(self, method: str, *answers: Planned) -> None:
        """Answer the next calls of ``method`` like this (then normally again)."""
        self._plans.setdefault(method, []).extend(answers)

    # -- what tests read ------------------------------------------------------------------
    def of(self, method: str, **match: Any) -> list[Call]:
        """Calls of a method that Slack accepted, optionally matching some arguments."""
        return [
            c
            for c in self.calls
            if c.method == method and c.ok and all(c.args.get(k) == v for k, v in match.items())
        ]

    def posts(self) -> list[Call]:
        """Top-level messages posted (not thread replies)."""
        return [c for c in self.of("chat.postMessage") if not c.args.get("thread_ts")]

    def ts_of(self, call: Call) -> str:
        """The ts Slack gave a posted message."""
        return str(call.result["ts"])

    def replies(self, ts: str) -> list[Call]:
        return self.of("chat.postMessage", thread_ts=ts)

    def ephemerals(self, user: str) -> list[Call]:
        return self.of("chat.postEphemeral", user=user)

    def action_ids(self, ts: str) -> list[str]:
        """The buttons the message shows now."""
        return [
            e["action_id"]
            for b in self.messages[ts].get("blocks") or []
            if b["type"] == "actions"
            for e in b["elements"]
        ]

    def text_of(self, ts: str) -> str:
        """Everything the message shows now, as one string."""
        return json.dumps(self.messages[ts], ensure_ascii=False)

    # -- the API ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.method == "GET":
            args: dict[str, Any] = {}
        elif request.content_type == "application/json":
            args = await request.json()
        else:
            args = dict(await request.post())
        args.update(request.query)
        for key in ("blocks", "attachments", "users", "metadata"):
            if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
                args[key] = json.loads(args[key])
        call = Call(method, args, self.clock() if self.clock else None)
        self.calls.append(call)
        if self.down:
            call.status = 503
            return web.Response(status=503, text="down", headers={"Connection": "close"})
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self.spell is not None:
            return self._broken(method, args, call, self.spell)
        plans = self._plans.get(method)
        planned = plans.pop(0) if plans else None
        if planned and not planned.do_it:
            call.status = planned.status
            headers = {"Retry-After": str(planned.retry_after)} if planned.retry_after else {}
            return web.json_response(
                {"ok": False, "error": planned.error or "ratelimited"}, status=planned.status, headers=headers
            )
        answer = self._do(method, args)
        call.result = answer
        if planned:  # the work is done, the answer is lost
            call.status = planned.status
            return web.json_response({"ok": False, "error": "internal_error"}, status=planned.status)
        call.ok = bool(answer.get("ok"))
        return web.json_response(answer)

    def _broken(self, method: str, args: dict[str, Any], call: Call, spell: Spell) -> web.Response:
        call.status = spell.status
        if method == "chat.postMessage":
            if spell.stores(spell.posts):
                call.result = self._do(method, args)
            spell.posts += 1
        return web.json_response({"ok": False, "error": "internal_error"}, status=spell.status)

    def _now(self) -> float:
        return self.clock().timestamp() if self.clock else time.time()

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, after ``oldest``, in pages."""
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [
            m
            for ts, m in reversed(self.messages.items())
            if m["channel"] == args.get("channel") and not m.get("thread_ts") and self.posted_at[ts] > oldest
        ]
        start, limit = int(args.get("cursor") or 0), int(args.get("limit") or 100)
        page = [
            {k: v for k, v in m.items() if k != "metadata" or with_metadata}
            for m in found[start : start + limit]
        ]
        more = start + limit < len(found)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _do(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://finance.example/",
                "team": "Finance",
                "user": "ledgerops",
                "team_id": "T0TEAM",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = f"{1_790_000_000 + next(self._ts)}.000100"
            self.messages[ts] = {
                "channel": args.get("channel"),
                "ts": ts,
                "text": args.get("text"),
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts"),
            }
            if args.get("metadata"):
                self.messages[ts]["metadata"] = args["metadata"]
            self.posted_at[ts] = self._now()
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": self.messages[ts]}
        if method == "chat.update":
            msg = self.messages.get(str(args.get("ts")))
            if msg is None or msg["channel"] != args.get("channel"):
                return {"ok": False, "error": "message_not_found"}
            msg.update(text=args.get("text"), blocks=args.get("blocks"))
            return {"ok": True, "channel": msg["channel"], "ts": msg["ts"], "text": msg["text"]}
        if method == "conversations.history":
            return self._history(args)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "users.info":
            user = str(args.get("user"))
            return {"ok": True, "user": {"id": user, "name": user.lower(), "real_name": user}}
        if method == "usergroups.users.list":
            users = self.usergroups.get(str(args.get("usergroup")))
            if users is None:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": users}
        if method in ("views.open", "views.update", "views.publish"):
            return {"ok": True, "view": {"id": "V0VIEW", **(args.get("view") or {})}}
        return {"ok": False, "error": "unknown_method"}


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
    action_id: str, value: str, *, user: str, channel: str = CHANNEL, message_ts: str = "1790000001.000100"
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
        "trigger_id": "1234.5678.abcd",
        "message": {"type": "message", "ts": message_ts, "text": "…"},
        "response_url": "https://hooks.slack.invalid/actions/T0TEAM/1/x",
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
        self, action_id: str, value: str, *, user: str = ALICE, message_ts: str = "1790000001.000100"
    ) -> httpx.Response:
        """Press a button the way Slack reports it."""
        body = click_body(action_id, value, user=user, message_ts=message_ts)
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


def _seconds(s: float) -> Any:
    from datetime import timedelta

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
    fake = FakeSlack(clock=clock)
    await fake.start()
    env = make_env(
        db_url,
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=fake.url,
    )
    config = config or make_config(
        slack=SlackConfig(channel=CHANNEL, allowed_users=[ALICE], allowed_usergroup=USERGROUP)
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
