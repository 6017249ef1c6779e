"""The page: a Slack workspace reduced to what the bot uses, and its live state.

``GET /`` serves ``static/index.html`` (plain HTML/CSS/JS, nothing downloaded
at run time). The page reads its state from ``GET /local-slack/state`` and
follows it over server-sent events (``GET /local-slack/stream``); what a
person does goes to ``POST /local-slack/*`` and from there, as Slack would
send it, to the bot.

These routes speak for whichever user the page says it is: they are a
sandbox convenience bound to 127.0.0.1. They accept JSON only and refuse
other origins, so a web page elsewhere cannot click buttons through a
visitor's browser.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.local_slack.delivery import Delivery
from bot.local_slack.interactions import Refused
from bot.local_slack.ledger_panel import PanelError
from bot.local_slack.page_state import mine_shown, traffic_shown, workspace_shown

if TYPE_CHECKING:
    from bot.local_slack.stand_in import LocalSlack

STATIC = Path(__file__).parent / "static"
STREAM_REFRESH = 1.0  # seconds: the ledger panel changes without the workspace changing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Page:
    """The page's routes over one :class:`LocalSlack`."""

    def __init__(self, slack: LocalSlack):
        self.slack = slack
        self.ws = slack.workspace

    def mount(self, app: web.Application) -> None:
        """Add the page, its static files and its JSON routes."""
        app.router.add_get("/", self.index)
        app.router.add_static("/local-slack/static/", STATIC, append_version=False)
        app.router.add_get("/local-slack/state", self.state)
        app.router.add_get("/local-slack/stream", self.stream)
        for name, handler in {
            "act": self.act,
            "command": self.command,
            "say": self.say,
            "submit": self.submit,
            "close": self.close,
            "home": self.home,
            "dismiss": self.dismiss,
            "ledger": self.ledger,
        }.items():
            app.router.add_post(f"/local-slack/{name}", _guarded(handler))

    async def index(self, _request: web.Request) -> web.FileResponse:
        """``GET /``: the page itself."""
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    # -- reading -----------------------------------------------------------------------------
    def _user(self, request: web.Request) -> str:
        user = request.query.get("user") or self.slack.default_user
        person = self.ws.person(user)
        if person is None or person.is_bot:
            raise web.HTTPBadRequest(text=f"unknown user {user}")
        return user

    async def state(self, request: web.Request) -> web.Response:
        """``GET /local-slack/state?user=U…``: what that user sees, once."""
        return web.json_response(
            await self.state_for(self._user(request)), headers={"Cache-Control": "no-store"}
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the whole state whenever it differs from the last one sent."""
        user = self._user(request)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        last = ""
        with contextlib.suppress(ConnectionResetError):
            while not self.ws.closing:
                revision = self.ws.revision
                data = json.dumps(await self.state_for(user), separators=(",", ":"))
                if data != last:
                    await resp.write(f"data: {data}\n\n".encode())
                    last = data
                await self.ws.wait_change(revision, STREAM_REFRESH)
        return resp

    async def state_for(self, user: str) -> dict[str, Any]:
        """What ``user`` sees now (their ephemerals and modals, everyone's channel)."""
        return {
            "me": user,
            **workspace_shown(self.ws, self.slack.allowed),
            **mine_shown(self.ws, user),
            "traffic": traffic_shown(self.ws),
            "panel": await self.slack.panel.snapshot(),
        }

    # -- doing -------------------------------------------------------------------------------
    async def act(self, body: dict[str, Any]) -> dict[str, Any]:
        """A click or a choice: ``block_actions`` to the bot."""
        return _answer(
            await self.slack.interactions.click(
                _str(body, "user"),
                body.get("where") or {},
                _str(body, "block_id"),
                _str(body, "action_id"),
                body.get("chosen"),
                body.get("values") or {},
            )
        )

    async def command(self, body: dict[str, Any]) -> dict[str, Any]:
        """A typed ``/ledger …``: the slash-command request to the bot."""
        return _answer(
            await self.slack.interactions.command(
                _str(body, "user"), _str(body, "channel"), _str(body, "text")
            )
        )

    async def say(self, body: dict[str, Any]) -> dict[str, Any]:
        """A plain message from a person: shown in the channel; the bot does not read it."""
        user, channel = _str(body, "user"), _str(body, "channel")
        text = _str(body, "text").strip()
        if channel not in self.ws.channels or self.ws.person(user) is None or not text:
            raise Refused("a message needs a known user, channel and some text")
        thread_ts = body.get("thread_ts") or None
        self.ws.post(channel, user, _escape(text), thread_ts=thread_ts, bot=False)
        return {"ok": True}

    async def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        """A modal's submit button: ``view_submission`` to the bot."""
        return _answer(
            await self.slack.interactions.submit(
                _str(body, "user"), _str(body, "view_id"), body.get("values") or {}
            )
        )

    async def close(self, body: dict[str, Any]) -> dict[str, Any]:
        """A modal's close button."""
        return _answer(await self.slack.interactions.close(_str(body, "user"), _str(body, "view_id")))

    async def home(self, body: dict[str, Any]) -> dict[str, Any]:
        """The App Home tab was opened: ``app_home_opened`` to the bot."""
        return _answer(await self.slack.interactions.home_opened(_str(body, "user")))

    async def dismiss(self, body: dict[str, Any]) -> dict[str, Any]:
        """Dismiss one of the user's ephemeral messages."""
        self.ws.dismiss(_str(body, "user"), _str(body, "ts"))
        return {"ok": True}

    async def ledger(self, body: dict[str, Any]) -> dict[str, Any]:
        """A switch of the ledger panel (not Slack: the sandbox ledger itself)."""
        self.slack.panel.apply(_str(body, "integration"), _str(body, "op"), body.get("value"))
        self.ws.touch()
        return {"ok": True}


def _guarded(handler: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> Handler:
    """JSON in, JSON out; same-origin only; a refused request is a 400 naming why."""

    async def route(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"{request.scheme}://{request.host}":
            return web.json_response({"ok": False, "error": "cross-origin request"}, status=403)
        if request.content_type != "application/json":
            return web.json_response({"ok": False, "error": "send JSON"}, status=415)
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("a JSON object, please")
            return web.json_response(await handler(body))
        except (Refused, PanelError, ValueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)

    return route


def _answer(result: Delivery | None) -> dict[str, Any]:
    if result is None:
        return {"ok": True, "status": None}
    return {"ok": result.ok, "status": result.status, "error": result.error}


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise Refused(f"{key} must be a string")
    return value


def _escape(text: str) -> str:
    # What Slack does to what people type: their "<" is text, never markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
