"""What a person does on the page, delivered to the bot the way Slack delivers it.

Clicks, slash commands, modal submits and App Home visits become the payloads
real Slack sends (``block_actions``, the slash-command form body,
``view_submission``, ``view_closed``, ``event_callback``), signed with the
signing secret (``v0=`` HMAC over ``v0:timestamp:body``) and POSTed to the
bot's ``/slack/events`` over HTTP. The ack is honoured as Slack honours it: a
slash command's answer body, ``response_action`` for modals, and Slack's own
complaint when the bot answers late or not at all. ``response_url`` lives
here too (``POST /slack-hooks/{token}``).
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.local_slack.blockkit import (
    BlockError,
    action_of,
    check_blocks,
    find_element,
    missing_inputs,
    state_values,
)
from bot.local_slack.workspace import HOOK_USES, SLACKBOT, Hook, View, Workspace

ACK_SECONDS = 3.0  # Slack gives up on an ack after three seconds


class Refused(ValueError):
    """The page asked for something Slack would never send (a button that is not there …)."""


@dataclass(frozen=True)
class Delivery:
    """How the bot answered one request."""

    status: int  # 0: no answer (timeout, connection refused)
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Acknowledged (HTTP 200)."""
        return self.status == 200

    def json(self) -> dict[str, Any] | None:
        """The ack body as a JSON object, if it is one."""
        try:
            data = json.loads(self.body) if self.body.strip() else None
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def slack_error(self) -> str:
        """What Slack calls it when the app did not ack."""
        if self.status == 0:
            return "operation_timeout" if self.error == "timeout" else "dispatch_failed"
        return "dispatch_failed"


class Interactions:
    """Forwards a person's actions to the bot and applies the bot's answers."""

    def __init__(self, workspace: Workspace, events_url: str, signing_secret: str, hooks_url: str):
        self.ws = workspace
        self.events_url = events_url
        self.hooks_url = hooks_url.rstrip("/")
        self.signer = SignatureVerifier(signing_secret)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the HTTP session used to reach the bot."""
        if self._session is not None:
            await self._session.close()

    # -- delivery ---------------------------------------------------------------------------
    async def deliver(self, body: str, content_type: str, what: str) -> Delivery:
        """POST one signed request to the bot, as Slack does; never raises."""
        ts = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signer.generate_signature(timestamp=ts, body=body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self.events_url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ACK_SECONDS),
            ) as r:
                result = Delivery(r.status, await r.text())
        except TimeoutError:
            result = Delivery(0, "", "timeout")
        except aiohttp.ClientError as exc:
            result = Delivery(0, "", type(exc).__name__)
        self.ws.log("bot", what, str(result.status) if result.status else result.error or "?")
        return result

    async def _form(self, fields: dict[str, str], what: str) -> Delivery:
        return await self.deliver(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded", what)

    async def _payload(self, payload: dict[str, Any], what: str) -> Delivery:
        return await self._form({"payload": json.dumps(payload)}, what)

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
        kind = where.get("kind")
        if kind == "message":
            channel, ts = str(where.get("channel")), str(where.get("ts"))
            msg = self.ws.message(channel, ts)
            if msg is None:
                raise Refused("no such message")
            blocks = msg.blocks
            payload.update(
                container={"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
                channel={"id": channel, "name": self.ws.channels[channel]},
                message=msg.to_slack(),
                response_url=self._hook(user, channel, "message", ts),
            )
        elif kind == "ephemeral":
            eph = self.ws.ephemeral(user, str(where.get("ts")))
            if eph is None:
                raise Refused("no such ephemeral message")
            blocks = eph.blocks
            payload.update(
                container={
                    "type": "message",
                    "message_ts": eph.ts,
                    "channel_id": eph.channel,
                    "is_ephemeral": True,
                },
                channel={"id": eph.channel, "name": self.ws.channels.get(eph.channel, "")},
                response_url=self._hook(user, eph.channel, "ephemeral", eph.ts),
            )
        elif kind == "view":
            view = self.ws.views.get(str(where.get("view_id")))
            if view is None or view.user != user:
                raise Refused("no such view")
            blocks = view.body.get("blocks") or []
            try:
                view.values = state_values(blocks, values or {})
            except BlockError as exc:
                raise Refused(str(exc)) from None
            payload.update(container={"type": "view", "view_id": view.id}, view=self._view_json(view))
        else:
            raise Refused("where must be message, ephemeral or view")
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
        result = await self._payload(payload, f"block_actions {action_id}")
        if not result.ok:
            self.ws.notice(
                user,
                f"ledgerops did not respond ({result.slack_error()}): the click may not have reached it.",
            )
        return result

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
        person = self.ws.people[user]
        token = self.ws.new_hook(user, channel, "command", None, command_line=line.strip())
        hook = self.ws.hooks[token]
        fields = {
            "token": "sandbox-verification-token",
            "team_id": self.ws.team_id,
            "team_domain": self.ws.team_domain,
            "channel_id": channel,
            "channel_name": self.ws.channels[channel],
            "user_id": user,
            "user_name": person.name,
            "command": command,
            "text": text.strip(),
            "api_app_id": self.ws.app_id,
            "is_enterprise_install": "false",
            "response_url": f"{self.hooks_url}/{token}",
            "trigger_id": self.ws.new_trigger(user),
        }
        result = await self._form(fields, f"{command} {text.strip()}".strip())
        if not result.ok:
            self.ws.post_ephemeral(
                user, channel, f'{command} failed with the error "{result.slack_error()}"', author=SLACKBOT
            )
            return result
        answer = result.json()
        if answer is None and result.body.strip():
            answer = {"text": result.body}  # a plain-text ack is shown as it is
        if answer:
            hook.last_ephemeral = self._show(user, channel, answer, hook=hook)
        return result

    def _show(
        self,
        user: str,
        channel: str,
        answer: dict[str, Any],
        *,
        hook: Hook | None = None,
        thread_ts: str | None = None,
    ) -> str | None:
        """Show an answer (ack body or response_url post); returns an ephemeral's ts."""
        text = str(answer.get("text") or "")
        blocks = answer.get("blocks")
        if blocks is not None:
            try:
                blocks = check_blocks(blocks)
            except BlockError as exc:
                self.ws.notice(user, f"Slack refused the answer: invalid_blocks ({exc})")
                return None
        if answer.get("response_type") == "in_channel":
            if hook is not None and hook.command_line:  # Slack shows the command answered
                self.ws.post(channel, user, _escape(hook.command_line), bot=False)
                hook.command_line = None
            self.ws.post(
                channel,
                self.ws.bot.id,
                text,
                blocks=blocks,
                attachments=answer.get("attachments"),
                thread_ts=thread_ts,
            )
            return None
        return self.ws.post_ephemeral(user, channel, text, blocks, thread_ts=thread_ts).ts

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
        result = await self._payload(payload, f"view_submission {view.body.get('callback_id')}")
        if not result.ok:
            view.errors = {"": "We had some trouble connecting. Try again?"}
            self.ws.touch()
            return result
        self._respond_to_submit(user, view, result.json() or {})
        return result

    def _respond_to_submit(self, user: str, view: View, answer: dict[str, Any]) -> None:
        action = answer.get("response_action")
        if action == "errors":
            known = {str(b.get("block_id")) for b in view.body.get("blocks") or []}
            errors = answer.get("errors") or {}
            view.errors = {str(k): str(v) for k, v in errors.items() if str(k) in known}
            if len(view.errors) != len(errors):  # Slack refuses errors for unknown blocks
                view.errors[""] = "The app answered with errors for blocks this view lacks."
            self.ws.touch()
        elif action in ("update", "push"):
            new = answer.get("view") or {}
            try:
                body = dict(new, blocks=check_blocks(new.get("blocks") or [], limit=100))
            except BlockError as exc:
                view.errors = {"": f"The app's new view is invalid: {exc}"}
                self.ws.touch()
                return
            if action == "update":
                self.ws.replace_view(view, body)
            else:
                self.ws.open_modal(user, body, push=True)
        elif action == "clear":
            self.ws.close_modal(user, all_=True)
        else:
            self.ws.close_modal(user, view.id)

    async def close(self, user: str, view_id: str) -> Delivery | None:
        """The modal's close button (or Escape); ``view_closed`` when the view asked for it."""
        closed = self.ws.close_modal(user, view_id)
        if not closed or not closed[0].body.get("notify_on_close"):
            return None
        payload = self._base("view_closed", user)
        payload.update(view=self._view_json(closed[0]), is_cleared=False)
        return await self._payload(payload, "view_closed")

    # -- events -----------------------------------------------------------------------------
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
        return await self.deliver(json.dumps(body), "application/json", "app_home_opened")

    # -- response_url -------------------------------------------------------------------------
    async def hook(self, request: web.Request) -> web.Response:
        """``POST /slack-hooks/{token}``: a later answer to a command or a click."""
        hook = self.ws.hooks.get(request.match_info["token"])
        if hook is None or hook.expires < time.monotonic():
            return web.Response(status=404, text="expired_url")
        if hook.uses >= HOOK_USES:
            return web.Response(status=404, text="used_url")
        try:
            if request.content_type == "application/json":
                answer = await request.json()
            else:
                answer = json.loads(str((await request.post()).get("payload", "{}")))
        except (json.JSONDecodeError, ValueError):
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(answer, dict):
            return web.Response(status=400, text="invalid_payload")
        hook.uses += 1
        self.ws.log("api", f"response_url ({hook.source})", "ok")
        if self._replace_or_delete(hook, answer):
            return web.json_response({"ok": True})
        ts = self._show(hook.user, hook.channel, answer, hook=hook, thread_ts=answer.get("thread_ts"))
        if ts is not None:
            hook.last_ephemeral = ts
        return web.json_response({"ok": True})

    def _replace_or_delete(self, hook: Hook, answer: dict[str, Any]) -> bool:
        replace, delete = _flag(answer.get("replace_original")), _flag(answer.get("delete_original"))
        if not (replace or delete):
            return False
        if hook.source == "message" and hook.message_ts:
            msg = self.ws.message(hook.channel, hook.message_ts)
            if msg is None:
                return True
            if delete:
                self.ws.delete(msg)
            else:
                self.ws.update(msg, str(answer.get("text") or ""), _blocks_or_none(answer.get("blocks")))
            return True
        target = hook.message_ts if hook.source == "ephemeral" else hook.last_ephemeral
        eph = self.ws.ephemeral(hook.user, target) if target else None
        if eph is None:
            return False  # nothing to replace: shown as a new answer
        if delete:
            self.ws.dismiss(hook.user, eph.ts)
        else:
            eph.text, eph.blocks = str(answer.get("text") or ""), _blocks_or_none(answer.get("blocks"))
            self.ws.touch()
        return True


def _escape(text: str) -> str:
    # What a person typed is text, never markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _blocks_or_none(blocks: Any) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    try:
        return check_blocks(blocks)
    except BlockError:
        return None
