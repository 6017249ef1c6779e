"""The bot's answers shown as Slack shows them: an ack body, or a later post to a ``response_url``.

``POST /slack-hooks/{token}`` is the ``response_url`` of a command or a click:
five uses within thirty minutes; ``replace_original`` and ``delete_original``
change the message (or the ephemeral) the interaction came from.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from bot.local_slack.blockkit import BlockError, check_blocks
from bot.local_slack.response_url import HOOK_USES, Hook
from bot.local_slack.workspace import Workspace


class Answers:
    """Puts the bot's answers in the channel, in an ephemeral, or over the original message."""

    def __init__(self, workspace: Workspace):
        self.ws = workspace

    def show(
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
        ts = self.show(hook.user, hook.channel, answer, hook=hook, thread_ts=answer.get("thread_ts"))
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
