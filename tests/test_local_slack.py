"""The local Slack stand-in over real HTTP: its Web API, and what it sends the bot.

Two kinds of test: against the real sandbox (the bot and the stand-in on one
server, as ``python app.py`` runs them) and against a recording receiver that
checks every signature itself and shows the exact payloads Slack's shapes
demand.
"""

from __future__ import annotations

import json
import os
import select as io_select
import signal
import socket
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select

import app as cli
from bot.config import ConfigError, Environment
from bot.local_slack import SandboxServer
from bot.local_slack.interactions import Interactions, Refused
from bot.local_slack.page_banner import demo_banner
from bot.local_slack.server import bind
from bot.local_slack.workspace import Person, Workspace
from bot.sandbox.demo import OUTAGE_BILL, start_demo
from bot.sandbox.settings import sandbox_config_file
from storage.models import Document, Posting
from tests.browser.support import open_sandbox
from tests.support import bill, eventually

ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
CHANNEL = "C0FINANCE"


@pytest.fixture
async def sandbox(sqlite_url: str) -> AsyncIterator[SandboxServer]:
    async with open_sandbox(sqlite_url, seed=False, extra_commands=["/ledgertest"]) as server:
        yield server


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client


def token_of(sandbox: SandboxServer) -> str:
    assert sandbox.runtime.env.slack_bot_token is not None
    return sandbox.runtime.env.slack_bot_token.get_secret_value()


async def api(
    http: httpx.AsyncClient, sandbox: SandboxServer, method: str, token: str | None = None, **args: Any
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token if token is not None else token_of(sandbox)}"}
    r = await http.post(f"/slack-api/{method}", json=args, headers=headers)
    assert r.status_code == 200  # Slack answers errors with 200 and ok: false
    return r.json()


async def state(http: httpx.AsyncClient, user: str = ALICE) -> dict[str, Any]:
    return (await http.get("/local-slack/state", params={"user": user})).json()


async def page_post(http: httpx.AsyncClient, path: str, **body: Any) -> httpx.Response:
    return await http.post(f"/local-slack/{path}", json=body)


# -- the Web API ------------------------------------------------------------------------------


async def test_web_api_checks_the_bot_token(sandbox: SandboxServer, http: httpx.AsyncClient) -> None:
    r = await http.post("/slack-api/auth.test")
    assert r.json() == {"ok": False, "error": "not_authed"}
    assert await api(http, sandbox, "auth.test", token="xoxb-wrong") == {"ok": False, "error": "invalid_auth"}
    me = await api(http, sandbox, "auth.test")
    assert me["ok"] and me["user_id"] == "U0LEDGEROPS" and me["bot_id"] == "B0LEDGEROPS"
    assert (await api(http, sandbox, "chat.frobnicate"))["error"] == "unknown_method"
    # nothing the wrong token asked for happened
    assert await api(http, sandbox, "chat.postMessage", token="xoxb-wrong", channel=CHANNEL, text="hi") == {
        "ok": False,
        "error": "invalid_auth",
    }
    assert (await state(http))["channels"][0]["messages"] == []


async def test_post_thread_update_and_errors_like_slack(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Bill* failed"}}]
    posted = await api(http, sandbox, "chat.postMessage", channel=CHANNEL, text="Bill failed", blocks=blocks)
    assert posted["ok"] and posted["channel"] == CHANNEL and posted["message"]["text"] == "Bill failed"
    ts = posted["ts"]
    reply = await api(http, sandbox, "chat.postMessage", channel=CHANNEL, text="attempt 2", thread_ts=ts)
    assert reply["ok"] and reply["message"]["thread_ts"] == ts
    updated = await api(http, sandbox, "chat.update", channel=CHANNEL, ts=ts, text="Bill synced", blocks=[])
    assert updated["ok"] and updated["ts"] == ts and updated["text"] == "Bill synced"
    [msg] = (await state(http))["channels"][0]["messages"]
    assert msg["text"] == "Bill synced" and msg["edited"] and msg["blocks"] == []
    assert [r["text"] for r in msg["replies"]] == ["attempt 2"]

    errors = {
        "message_not_found": ("chat.update", {"channel": CHANNEL, "ts": "1.000001", "text": "x"}),
        "channel_not_found": ("chat.postMessage", {"channel": "C0NOPE", "text": "x"}),
        "no_text": ("chat.postMessage", {"channel": CHANNEL}),
        "thread_not_found": ("chat.postMessage", {"channel": CHANNEL, "text": "x", "thread_ts": "1.000001"}),
        "invalid_blocks": (
            "chat.postMessage",
            {
                "channel": CHANNEL,
                "text": "x",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
            },
        ),
    }
    for error, (method, args) in errors.items():
        assert (await api(http, sandbox, method, **args))["error"] == error, error


async def test_the_bots_own_client_works_against_the_stand_in(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    """slack_sdk sends JSON to some methods, forms or GET to others: all are understood."""
    assert sandbox.runtime.slack is not None
    client = sandbox.runtime.slack.client
    posted = await client.chat_postMessage(
        channel=CHANNEL,
        text="hello",
        blocks=[{"type": "divider"}, {"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}]}],
    )
    assert posted["ok"]
    assert (await client.usergroups_users_list(usergroup="S0FINANCE"))["users"] == [BOB]
    assert (await client.users_info(user=ALICE))["user"]["real_name"] == "Alice (finance)"
    assert (await client.conversations_info(channel=CHANNEL))["channel"]["name"] == "finance"
    traffic = " ".join(t["what"] for t in (await state(http))["traffic"])
    assert "usergroups.users.list" in traffic and "users.info" in traffic


async def test_history_returns_message_metadata_like_slack(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    """The outbox finds a post whose answer was lost by its metadata (conversations.history)."""
    assert sandbox.runtime.slack is not None
    client = sandbox.runtime.slack.client
    meta = {"event_type": "ledgerops_outbox", "event_payload": {"outbox_row": 7, "queued": 1}}
    first = await client.chat_postMessage(channel=CHANNEL, text="first", metadata=meta)
    await client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=first["ts"])
    second = await client.chat_postMessage(channel=CHANNEL, text="second")
    seen = await client.conversations_history(channel=CHANNEL, include_all_metadata=True, limit=1)
    assert [m["text"] for m in seen["messages"]] == ["second"] and seen["has_more"]
    cursor = seen["response_metadata"]["next_cursor"]
    rest = await client.conversations_history(channel=CHANNEL, include_all_metadata=True, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["first"]  # replies are not in the history
    assert rest["messages"][0]["metadata"] == meta
    plain = await client.conversations_history(channel=CHANNEL)
    assert all("metadata" not in m for m in plain["messages"])
    later = await client.conversations_history(channel=CHANNEL, oldest=first["ts"])
    assert [m["ts"] for m in later["messages"]] == [second["ts"]]
    assert (await api(http, sandbox, "conversations.history", channel="C0NOPE"))[
        "error"
    ] == "channel_not_found"


async def test_ephemerals_are_seen_by_their_user_only(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    sent = await api(http, sandbox, "chat.postEphemeral", channel=CHANNEL, user=ALICE, text="only for Alice")
    assert sent["ok"] and sent["message_ts"]
    assert [e["text"] for e in (await state(http, ALICE))["ephemerals"]] == ["only for Alice"]
    assert (await state(http, BOB))["ephemerals"] == []
    assert (await api(http, sandbox, "chat.postEphemeral", channel=CHANNEL, user="U0NOBODY", text="x"))[
        "error"
    ] == "user_not_in_channel"
    await page_post(http, "dismiss", user=ALICE, ts=sent["message_ts"])
    assert (await state(http, ALICE))["ephemerals"] == []


async def test_views_need_a_fresh_trigger_and_home_is_per_user(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    home = {"type": "home", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "Status"}}]}
    published = await api(http, sandbox, "views.publish", user_id=ALICE, view=home)
    assert published["ok"] and published["view"]["type"] == "home"
    assert (await state(http, ALICE))["home"]["view"]["blocks"][0]["type"] == "header"
    assert (await state(http, BOB))["home"] is None
    again = await api(http, sandbox, "views.publish", user_id=ALICE, view=home, hash="stale")
    assert again["error"] == "hash_conflict"
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Resync"}, "blocks": []}
    assert (await api(http, sandbox, "views.open", trigger_id="12.34.made-up", view=modal))[
        "error"
    ] == "invalid_trigger_id"
    assert (await api(http, sandbox, "views.update", view_id="V0NOPE", view=modal))["error"] == "not_found"
    assert (await api(http, sandbox, "usergroups.users.list", usergroup="S0NOPE"))[
        "error"
    ] == "no_such_subteam"


# -- what the stand-in sends the bot -----------------------------------------------------------


class Receiver:
    """A stand-in bot: checks each signature like bolt, records the body, answers as told."""

    def __init__(self, secret: str):
        self.verifier = SignatureVerifier(secret)
        self.received: list[tuple[str, str]] = []  # (content type, body)
        self.answers: list[web.Response] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        if not self.verifier.is_valid(
            body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature")
        ):
            return web.Response(status=401)
        self.received.append((request.content_type, body))
        return self.answers.pop(0) if self.answers else web.Response(status=200)

    def payload(self, i: int = -1) -> dict[str, Any]:
        return json.loads(urllib.parse.parse_qs(self.received[i][1])["payload"][0])

    def form(self, i: int = -1) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.received[i][1]).items()}


@pytest.fixture
async def wired() -> AsyncIterator[tuple[Workspace, Interactions, Receiver, str]]:
    """A workspace whose interactions go to a :class:`Receiver`; hooks served alongside."""
    receiver = Receiver("s3cret")
    ws = Workspace(
        team_name="T",
        channels={CHANNEL: "finance"},
        people=[Person(ALICE, "alice", "Alice")],
        usergroups={},
        bot=Person("U0BOT", "ledgerops", "ledgerops", is_bot=True),
        commands=["/ledger"],
    )
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    forward = Interactions(ws, f"{base}/slack/events", "s3cret", f"{base}/slack-hooks")
    app = web.Application()
    app.router.add_post("/slack/events", receiver.handle)
    app.router.add_post("/slack-hooks/{token}", forward.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    yield ws, forward, receiver, base
    await forward.aclose()
    await runner.cleanup()


BUTTONS = [
    {
        "type": "actions",
        "block_id": "b1",
        "elements": [
            {
                "type": "button",
                "action_id": "ledgerops.resync_invoice",
                "value": '{"document":1}',
                "text": {"type": "plain_text", "text": "Resync invoice posting"},
                "style": "primary",
            },
            {
                "type": "static_select",
                "action_id": "pick",
                "placeholder": {"type": "plain_text", "text": "Pick"},
                "options": [{"text": {"type": "plain_text", "text": "A"}, "value": "a"}],
            },
        ],
    }
]


async def test_click_is_a_signed_block_actions_payload(wired: Any) -> None:
    ws, forward, receiver, _ = wired
    msg = ws.post(CHANNEL, "U0BOT", "failed", blocks=BUTTONS)
    result = await forward.click(
        ALICE, {"kind": "message", "channel": CHANNEL, "ts": msg.ts}, "b1", "ledgerops.resync_invoice"
    )
    assert result.ok
    p = receiver.payload()
    assert p["type"] == "block_actions" and p["user"]["id"] == ALICE
    assert p["container"] == {
        "type": "message",
        "message_ts": msg.ts,
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert p["channel"]["id"] == CHANNEL and p["message"]["ts"] == msg.ts
    assert p["trigger_id"] and p["response_url"].startswith("http://127.0.0.1:")
    [action] = p["actions"]
    assert (
        action["action_id"] == "ledgerops.resync_invoice"
        and action["value"] == '{"document":1}'
        and action["block_id"] == "b1"
    )
    await forward.click(ALICE, {"kind": "message", "channel": CHANNEL, "ts": msg.ts}, "b1", "pick", "a")
    assert receiver.payload()["actions"][0]["selected_option"]["value"] == "a"
    with pytest.raises(Refused):  # an option the bot never offered is never sent
        await forward.click(ALICE, {"kind": "message", "channel": CHANNEL, "ts": msg.ts}, "b1", "pick", "z")


async def test_slash_command_form_ack_and_response_url(wired: Any) -> None:
    ws, forward, receiver, _ = wired
    receiver.answers.append(web.json_response({"response_type": "ephemeral", "text": "3 failed"}))
    await forward.command(ALICE, CHANNEL, "/ledger status")
    form = receiver.form()
    assert form["command"] == "/ledger" and form["text"] == "status" and form["user_id"] == ALICE
    assert form["channel_id"] == CHANNEL and form["trigger_id"] and form["response_url"]
    assert [e.text for e in ws.ephemerals[ALICE]] == ["3 failed"]
    async with httpx.AsyncClient() as client:
        r = await client.post(form["response_url"], json={"response_type": "in_channel", "text": "queued 12"})
        assert r.status_code == 200
        assert [m.text for m in ws.messages[CHANNEL].values()] == ["/ledger status", "queued 12"]
        for _ in range(4):
            await client.post(form["response_url"], json={"text": "again"})
        assert (await client.post(form["response_url"], json={"text": "6th"})).status_code == 404
    receiver.answers.append(web.Response(status=404))  # no listener for the command
    await forward.command(ALICE, CHANNEL, "/ledger status")
    assert ws.ephemerals[ALICE][-1].text == '/ledger failed with the error "dispatch_failed"'
    await forward.command(ALICE, CHANNEL, "/nope")
    assert "is not a valid command" in ws.ephemerals[ALICE][-1].text


async def test_modal_submit_honours_response_action(wired: Any) -> None:
    ws, forward, receiver, _ = wired
    view = ws.open_modal(
        ALICE,
        {
            "type": "modal",
            "callback_id": "bulk",
            "title": {"type": "plain_text", "text": "Resync"},
            "submit": {"type": "plain_text", "text": "Go"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "since",
                    "label": {"type": "plain_text", "text": "Since"},
                    "element": {"type": "datepicker", "action_id": "d"},
                }
            ],
        },
    )
    assert await forward.submit(ALICE, view.id, {}) is None  # required and empty: Slack says so
    assert view.errors == {"since": "Please fill out this field."} and not receiver.received
    receiver.answers.append(
        web.json_response({"response_action": "errors", "errors": {"since": "Not in the future"}})
    )
    await forward.submit(ALICE, view.id, {"since": {"d": "2099-01-01"}})
    p = receiver.payload()
    assert p["type"] == "view_submission" and p["view"]["callback_id"] == "bulk"
    assert p["view"]["state"]["values"] == {
        "since": {"d": {"type": "datepicker", "selected_date": "2099-01-01"}}
    }
    assert view.errors == {"since": "Not in the future"} and ws.modals[ALICE] == [view]
    await forward.submit(ALICE, view.id, {"since": {"d": "2026-01-01"}})  # empty ack: closes
    assert ws.modals[ALICE] == []


async def test_app_home_opened_is_an_event_callback(wired: Any) -> None:
    ws, forward, receiver, _ = wired
    await forward.home_opened(ALICE)
    content_type, body = receiver.received[-1]
    event = json.loads(body)
    assert content_type == "application/json" and event["type"] == "event_callback"
    assert event["event"]["type"] == "app_home_opened" and event["event"]["user"] == ALICE
    assert event["event"]["tab"] == "home" and event["api_app_id"] == ws.app_id


# -- through the real bot -----------------------------------------------------------------------


async def _message_with(http: httpx.AsyncClient, text: str) -> dict[str, Any] | None:
    msgs = (await state(http))["channels"][0]["messages"]
    return next((m for m in msgs if text in json.dumps(m)), None)


def _button(msg: dict[str, Any], action_id: str) -> tuple[str, str]:
    for block in msg["blocks"]:
        for e in block.get("elements") or []:
            if e.get("action_id") == action_id:
                return block["block_id"], action_id
    raise AssertionError(f"no {action_id} on the message")


async def _failed_bill(sandbox: SandboxServer, http: httpx.AsyncClient) -> dict[str, Any]:
    """A bill that failed because the ledger was unreachable, as the channel shows it."""
    await page_post(http, "ledger", integration="sandbox-dk", op="reachable", value=False)
    r = await http.post(
        "/api/v1/events",
        json=bill("B-7", integration="sandbox-dk"),
        headers={"Authorization": "Bearer sandbox-ingest-token"},
    )
    assert r.status_code == 202
    return await eventually(
        lambda: _message_with(http, "could not be posted"), timeout=20, message="the failure message"
    )


async def test_click_forwarded_by_the_stand_in_reaches_the_bot(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    msg = await _failed_bill(sandbox, http)
    assert "Could not connect to the ledger" in json.dumps(msg)
    await page_post(http, "ledger", integration="sandbox-dk", op="reachable", value=True)
    block_id, action_id = _button(msg, "ledgerops.resync_invoice")
    r = await page_post(
        http,
        "act",
        user=ALICE,
        where={"kind": "message", "channel": CHANNEL, "ts": msg["ts"]},
        block_id=block_id,
        action_id=action_id,
    )
    assert r.json() == {"ok": True, "status": 200, "error": None}  # bolt verified the signature

    async def synced() -> bool:
        m = await _message_with(http, "INV-B-7")
        return bool(m and "is synced" in json.dumps(m) and "Fixed by <@U0ALICE>" in json.dumps(m))

    await eventually(synced, timeout=20, message="the message to show synced")
    assert len((await state(http))["channels"][0]["messages"]) == 1  # updated in place


async def test_user_not_allowed_is_refused_and_nothing_changes(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    msg = await _failed_bill(sandbox, http)
    await page_post(http, "ledger", integration="sandbox-dk", op="reachable", value=True)
    block_id, action_id = _button(msg, "ledgerops.resync_invoice")
    r = await page_post(
        http,
        "act",
        user=MALLORY,
        where={"kind": "message", "channel": CHANNEL, "ts": msg["ts"]},
        block_id=block_id,
        action_id=action_id,
    )
    assert r.json()["status"] == 200

    async def refusal() -> str:
        return " ".join(e["text"] for e in (await state(http, MALLORY))["ephemerals"])

    assert "not allowed to resync invoice postings" in await eventually(refusal, timeout=10)
    assert (await state(http, ALICE))["ephemerals"] == []
    async with sandbox.runtime.db.sessions() as s:
        assert (await s.scalars(select(Posting.state))).all() == ["failed"]


async def test_bolt_listeners_round_trip_through_the_stand_in(
    sandbox: SandboxServer, http: httpx.AsyncClient
) -> None:
    """A command acked ephemerally, respond() in the channel, a modal opened and submitted."""
    assert sandbox.runtime.slack is not None
    bolt = sandbox.runtime.slack.app
    modal = {
        "type": "modal",
        "callback_id": "t",
        "title": {"type": "plain_text", "text": "T"},
        "submit": {"type": "plain_text", "text": "OK"},
        "blocks": [
            {
                "type": "input",
                "block_id": "n",
                "label": {"type": "plain_text", "text": "N"},
                "element": {"type": "plain_text_input", "action_id": "v"},
            }
        ],
    }

    @bolt.command("/ledgertest")
    async def command(ack: Any, respond: Any, client: Any, body: dict[str, Any]) -> None:
        await ack(response_type="ephemeral", text="working on it")
        await respond(response_type="in_channel", text="done for everyone")
        await client.views_open(trigger_id=body["trigger_id"], view=modal)

    @bolt.view("t")
    async def submitted(ack: Any, view: dict[str, Any]) -> None:
        if view["state"]["values"]["n"]["v"]["value"] != "7":
            await ack(response_action="errors", errors={"n": "must be 7"})
        else:
            await ack()

    r = await page_post(http, "command", user=ALICE, channel=CHANNEL, text="/ledgertest go")
    assert r.json()["status"] == 200
    seen = await state(http)
    assert [e["text"] for e in seen["ephemerals"]] == ["working on it"]
    assert [m["text"] for m in seen["channels"][0]["messages"]] == ["/ledgertest go", "done for everyone"]
    [view] = seen["modals"]
    await page_post(http, "submit", user=ALICE, view_id=view["id"], values={"n": {"v": "3"}})
    assert (await state(http))["modals"][0]["errors"] == {"n": "must be 7"}
    await page_post(http, "submit", user=ALICE, view_id=view["id"], values={"n": {"v": "7"}})
    assert (await state(http))["modals"] == []


async def test_page_routes_refuse_other_origins_and_non_json(http: httpx.AsyncClient) -> None:
    r = await http.post(
        "/local-slack/say",
        json={"user": ALICE, "channel": CHANNEL, "text": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403
    r = await http.post("/local-slack/say", data={"user": ALICE, "channel": CHANNEL, "text": "x"})
    assert r.status_code == 415
    assert (await state(http))["channels"][0]["messages"] == []
    page = await http.get("/")
    assert page.status_code == 200 and "/local-slack/static/app.js" in page.text


def test_static_files_download_nothing() -> None:
    """No CDN, no fonts from the web: the page works offline."""
    static = Path(__file__).parents[1] / "bot" / "local_slack" / "static"
    for f in static.iterdir():
        text = f.read_text(encoding="utf-8")
        assert "//cdn" not in text and "googleapis" not in text, f.name
        assert ".innerHTML" not in text and "insertAdjacentHTML" not in text, f.name


# -- demo data and the CLI ---------------------------------------------------------------------


async def test_demo_data_is_seeded_once_and_shows_each_problem(sqlite_url: str) -> None:
    async with open_sandbox(sqlite_url) as server:
        assert server.demo is not None
        await eventually(lambda: _finished(server), timeout=60, message="the demo script")
        async with server.runtime.db.sessions() as s:
            rows = (
                await s.execute(
                    select(Document.external_id, Posting.kind, Posting.state, Posting.attempts).join(
                        Posting, Posting.document_id == Document.id
                    )
                )
            ).all()
        states = {(d, k): st for d, k, st, _ in rows}
        assert states[("B-1005", "invoice")] == states[("B-1006", "invoice")] == "failed"
        assert states[("B-1008", "invoice")] == "booked"
        assert states[(OUTAGE_BILL, "invoice")] == "failed"
        retried = next(a for d, k, _, a in rows if d == "B-1009")
        assert states[("B-1009", "invoice")] == "synced" and retried == 2
        assert sum(1 for d, k, st, _ in rows if k == "journal" and st == "synced") == 2
        assert "unreachable on purpose" in (await demo_banner(server.runtime, server.demo) or "")
        assert await start_demo(server.runtime) is None  # the database has documents now


async def _finished(server: SandboxServer) -> bool:
    return bool(server.demo and server.demo.finished.is_set())


def test_sandbox_refuses_a_real_token_and_real_ledgers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-real-one")
    assert cli.main(["sandbox"]) == 2
    assert "SLACK_BOT_TOKEN is set" in capsys.readouterr().err
    toml = tmp_path / "real.toml"
    toml.write_text('[[integrations]]\nname = "economic-dk"\nkind = "economic"\n')
    with pytest.raises(ConfigError, match="only runs sandbox integrations"):
        sandbox_config_file(Environment(ledgerops_config=str(toml)))


def test_python_app_py_prints_one_line_and_serves(tmp_path: Path) -> None:
    """``make run``'s command on an empty directory: migrations, server, one line, clean stop."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "LEDGEROPS_", "DATABASE_URL", "PORT"))
    }
    env["PORT"] = str(port)
    proc = subprocess.Popen(
        [sys.executable, str(Path(cli.__file__).resolve())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = io_select.select([proc.stdout], [], [], 60)  # a deadline, not a sleep
        assert ready, "python app.py printed nothing within 60 s"
        line = proc.stdout.readline()
        assert line == f"ledgerops: open http://127.0.0.1:{port}\n"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json() == {"ok": True}
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
        assert (tmp_path / "sandbox-data" / "ledgerops-sandbox.db").exists()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # the one line was all
