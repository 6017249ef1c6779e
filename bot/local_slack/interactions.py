"""What a person does on the page, delivered to the bot the way Slack delivers it.

Clicks, slash commands, modal submits and App Home visits become the payloads
real Slack sends (``block_actions``, the slash-command form body,
``view_submission``, ``view_closed``, ``event_callback``), signed and POSTed to
the bot's ``/slack/events`` (:mod:`bot.local_slack.delivery`). The ack is
honoured as Slack honours it: a slash command's answer body
(:mod:`bot.local_slack.answers`), ``response_action`` for modals
(:mod:`bot.local_slack.modal`), and Slack's own complaint when the bot answers
late or not at all.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from bot.local_slack.answers import Answers
from bot.local_slack.blockkit import BlockError, action_of, find_element, missing_inputs, state_values
from bot.local_slack.delivery import Delivery, EventsEndpoint
from bot.local_slack.members import SLACKBOT
from bot.local_slack.modal import respond_to_submit
from bot.local_slack.views import View
from bot.local_slack.workspace import Workspace

Clicked = tuple[list[dict[str, Any]], dict[str, Any]]  # the blocks clicked in, the payload's container part


class Refused(ValueError):
    """The page asked for something Slack would never send (a button that is not there …)."""


class Interactions:
    """Forwards a person's actions to the bot and applies the bot's answers."""

    def __init__(self, workspace: Workspace, events_url: str, signing_secret: str, hooks_url: str):
        self.ws = workspace
        self.hooks_url = hooks_url.rstrip("/")
        self.bot = EventsEndpoint(workspace, events_url, signing_secret)
        self.answers = Answers(workspace)

    async def aclose(self) -> None:
        """Close the HTTP session used to reach the bot."""
        await self.bot.aclose()

    async def hook(self, request: web.Request) -> web.Response:
        """``POST /slack-hooks/{token}``: a later answer to a command or a click."""
        return await self.answers.hook(request)

    def _user(self, user: str) -> dict[str, Any]:
        person = self.ws.person(user)
        if person is None or person.is_bot:
            raise Refused(f"unknown user {user}")
        return {"id": user, "username": person.name, "name": person.name, "team_id": self.ws.team_id}

    def _base(self, kind: str, user: str) -> dict[str, Any]:
        return {
            "type": kind,
            "user": self._user(user),
            "api_app_id": self.ws.app_id,
            "token": "sandbox-verification-token",
            "team": {"id": self.ws.team_id, "domain": self.ws.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _view_json(self, view: View) -> dict[str, Any]:
        return view.to_slack(self.ws.team_id, self.ws.app_id, self.ws.bot_id)

    def _hook(self, user: str, channel: str, source: str, ts: str | None) -> str:
        return f"{self.hooks_url}/{self.ws.new_hook(user, channel, source, ts)}"

    # -- block_actions ----------------------------------------------------------------------
    async def click(
        self,
        user: str,
        where: dict[str, Any],
        block_id: str,
        action_id: str,
        chosen: Any = None,
        values: dict[str, Any] | None = None,
    ) -> Delivery:
        """A button press or a choice in a select, overflow or date picker."""
        payload = self._base("block_actions", user)
        blocks, container = self._clicked_in(user, where, values or {})
        payload.update(container)
        element = find_element(blocks, block_id, action_id)
        if element is None:
            raise Refused("no such element")
        try:
            action = action_of(element, block_id, chosen, self.ws.new_ts())
        except BlockError as exc:
            raise Refused(str(exc)) from None
        payload["actions"] = [action]
        payload["state"] = {"values": payload.get("view", {}).get("state", {}).get("values", {})}
        payload["trigger_id"] = self.ws.new_trigger(user)
        result = await self.bot.payload(payload, f"block_actions {action_id}")
        if not result.ok:
            self.ws.notice(
                user,
                f"ledgerops did not respond ({result.slack_error()}): the click may not have reached it.",
            )
        return result

    def _clicked_in(self, user: str, where: dict[str, Any], values: dict[str, Any]) -> Clicked:
        kind = where.get("kind")
        if kind == "message":
            return self._in_message(user, str(where.get("channel")), str(where.get("ts")))
        if kind == "ephemeral":
            return self._in_ephemeral(user, str(where.get("ts")))
        if kind == "view":
            return self._in_view(user, str(where.get("view_id")), values)
        raise Refused("where must be message, ephemeral or view")

    def _in_message(self, user: str, channel: str, ts: str) -> Clicked:
        msg = self.ws.message(channel, ts)
        if msg is None:
            raise Refused("no such message")
        return msg.blocks or [], {
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "channel": {"id": channel, "name": self.ws.channels[channel]},
            "message": msg.to_slack(),
            "response_url": self._hook(user, channel, "message", ts),
        }

    def _in_ephemeral(self, user: str, ts: str) -> Clicked:
        eph = self.ws.ephemeral(user, ts)
        if eph is None:
            raise Refused("no such ephemeral message")
        return eph.blocks or [], {
            "container": {
                "type": "message",
                "message_ts": eph.ts,
                "channel_id": eph.channel,
                "is_ephemeral": True,
            },
            "channel": {"id": eph.channel, "name": self.ws.channels.get(eph.channel, "")},
            "response_url": self._hook(user, eph.channel, "ephemeral", eph.ts),
        }

    def _in_view(self, user: str, view_id: str, values: dict[str, Any]) -> Clicked:
        view = self.ws.views.get(view_id)
        if view is None or view.user != user:
            raise Refused("no such view")
        blocks = view.body.get("blocks") or []
        try:
            view.values = state_values(blocks, values)
        except BlockError as exc:
            raise Refused(str(exc)) from None
        return blocks, {"container": {"type": "view", "view_id": view.id}, "view": self._view_json(view)}

    # -- slash commands -----------------------------------------------------------------------
    async def command(self, user: str, channel: str, line: str) -> Delivery | None:
        """``/ledger status`` typed in a channel."""
        self._user(user)
        if channel not in self.ws.channels:
            raise Refused("no such channel")
        command, _, text = line.strip().partition(" ")
        if command not in self.ws.commands:
            self.ws.post_ephemeral(
                user,
                channel,
                f"{command} is not a valid command. In Slack, all messages that "
                'start with the "/" character are interpreted as commands.',
                author=SLACKBOT,
            )
            return None
        token = self.ws.new_hook(user, channel, "command", None, command_line=line.strip())
        hook = self.ws.hooks[token]
        fields = self._command_form(user, channel, command, text.strip(), token)
        result = await self.bot.form(fields, f"{command} {text.strip()}".strip())
        if not result.ok:
            self.ws.post_ephemeral(
                user, channel, f'{command} failed with the error "{result.slack_error()}"', author=SLACKBOT
            )
            return result
        answer = result.json()
        if answer is None and result.body.strip():
            answer = {"text": result.body}  # a plain-text ack is shown as it is
        if answer:
            hook.last_ephemeral = self.answers.show(user, channel, answer, hook=hook)
        return result

    def _command_form(self, user: str, channel: str, command: str, text: str, token: str) -> dict[str, str]:
        return {
            "token": "sandbox-verification-token",
            "team_id": self.ws.team_id,
            "team_domain": self.ws.team_domain,
            "channel_id": channel,
            "channel_name": self.ws.channels[channel],
            "user_id": user,
            "user_name": self.ws.people[user].name,
            "command": command,
            "text": text,
            "api_app_id": self.ws.app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.hooks_url}/{token}",
            "trigger_id": self.ws.new_trigger(user),
        }

    # -- modals -------------------------------------------------------------------------------
    async def submit(self, user: str, view_id: str, given: dict[str, Any]) -> Delivery | None:
        """The modal's submit button: ``view_submission``, then its ``response_action``."""
        stack = self.ws.modals.get(user) or []
        if not stack or stack[-1].id != view_id:
            raise Refused("that modal is not open")
        view = stack[-1]
        blocks = view.body.get("blocks") or []
        try:
            view.values = state_values(blocks, given)
        except BlockError as exc:
            raise Refused(str(exc)) from None
        view.errors = missing_inputs(blocks, view.values)
        if view.errors:  # Slack checks required fields itself, before the app hears of it
            self.ws.touch()
            return None
        payload = self._base("view_submission", user)
        payload.update(trigger_id=self.ws.new_trigger(user), view=self._view_json(view), response_urls=[])
        result = await self.bot.payload(payload, f"view_submission {view.body.get('callback_id')}")
        if not result.ok:
            view.errors = {"": "We had some trouble connecting. Try again?"}
            self.ws.touch()
            return result
        respond_to_submit(self.ws, user, view, result.json() or {})
        return result

    async def close(self, user: str, view_id: str) -> Delivery | None:
        """The modal's close button (or Escape); ``view_closed`` when the view asked for it."""
        closed = self.ws.close_modal(user, view_id)
        if not closed or not closed[0].body.get("notify_on_close"):
            return None
        payload = self._base("view_closed", user)
        payload.update(view=self._view_json(closed[0]), is_cleared=False)
        return await self.bot.payload(payload, "view_closed")

    # -- the App Home -------------------------------------------------------------------------
    async def home_opened(self, user: str) -> Delivery:
        """The App Home tab was opened: ``app_home_opened`` (Events API)."""
        self._user(user)
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.ws.dm_channel,
            "tab": "home",
            "event_ts": self.ws.new_ts(),
        }
        home = self.ws.homes.get(user)
        if home is not None:
            event["view"] = self._view_json(home)
        body = {
            "token": "sandbox-verification-token",
            "team_id": self.ws.team_id,
            "api_app_id": self.ws.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": self.ws.new_id("Ev"),
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.ws.team_id,
                    "user_id": self.ws.bot.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return await self.bot.deliver(json.dumps(body), "application/json", "app_home_opened")
