"""The allow-list gate: one bolt middleware in front of every listener.

Every button, every modal submission (anything interactive) and every
changing slash command needs ``[slack].allowed_users`` or the allowed user
group (:class:`bot.auth.Gatekeeper`). Reading commands (status, attention, activity,
log, queue, help) and the App Home opening stay open to the workspace. It is
closed by default: a listener added tomorrow is behind the gate without a
line of its own.

A refusal is answered within Slack's three seconds and audited (``activity``,
outcome ``refused``):

- a button: acknowledged, then an ephemeral "You are not allowed to …";
- a modal submission: ``response_action: errors`` on its first input, so the
  modal stays open and says why (no channel is needed);
- a command: the ephemeral refusal is the acknowledgement itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.actions import ActionId
from bot.auth import record
from bot.block_kit import SlackBody
from bot.bulk.modal import BULK_CALLBACK
from bot.outbox.delivery import call
from bot.postings.log_blocks import refusal
from bot.runtime import Runtime
from bot.slack import SlackBot
from bot.slack_guard import ok_json
from handlers import command_parser as cp

log = logging.getLogger(__name__)

#: requests anyone in the workspace may send (the rest of an event is read-only too)
OPEN_TYPES = frozenset({"event_callback", "url_verification", "app_rate_limited"})
#: the longest a refusal waits for the user group before it says "could not check"
GROUP_WAIT = 1.5
REASON = "not in allowed_users or allowed_usergroup"

#: what the refusal says the user may not do
ACTION_WORDS = {
    ActionId.RESYNC_INVOICE: "resync invoice postings",
    ActionId.RESYNC_PAYMENT: "resync payment postings",
    ActionId.RESYNC_POSTING: "resync postings",
    ActionId.IGNORE: "ignore postings",
    ActionId.RESYNC_GROUP: "resync a whole error group",
    ActionId.MARK_HANDLED: "mark booked changes handled",
    ActionId.SHOW_LOG: "read the integration log",
    ActionId.LOG_PAGE: "read the integration log",
    ActionId.PAGE: "page through this answer",
    ActionId.ACTIVITY_PAGE: "read the activity log",
    ActionId.PAUSE: "pause or resume integrations",
    ActionId.RESUME: "pause or resume integrations",
    ActionId.CONFIRM_HISTORY: "transfer history",
    ActionId.BULK_FILTER: "resync failed postings in bulk",
}
VIEW_WORDS = {BULK_CALLBACK: "resync failed postings in bulk"}
CHANGE_WORDS = {
    cp.Resync: "resync postings",
    cp.Restart: "restart bookings",
    cp.ResyncFailed: "resync failed postings in bulk",
    cp.Pause: "pause integrations",
    cp.Resume: "resume integrations",
    cp.History: "transfer history",
    cp.Map: "change mappings",
}


@dataclass(frozen=True)
class Ask:
    """What a request wants to do, for the gate and the audit row."""

    kind: str  # action | view | command
    user: str
    words: str  # "resync invoice postings"
    action: str  # the audit row's action
    subject: str


def ask_of(body: dict[str, Any]) -> Ask | None:
    """What the request wants, or ``None`` when anyone may send it."""
    if "command" in body:
        cmd = cp.parse(str(body.get("text") or ""))
        if not isinstance(cmd, cp.CHANGING):
            return None
        name = f"command_{type(cmd).__name__.lower()}"
        return Ask("command", str(body.get("user_id") or ""), CHANGE_WORDS[type(cmd)], name, "command")
    kind = body.get("type")
    if kind in OPEN_TYPES:
        return None
    user = str((body.get("user") or {}).get("id") or "")
    if kind == "block_actions":
        action = (body.get("actions") or [{}])[0]
        action_id = str(action.get("action_id") or "")
        words = ACTION_WORDS.get(action_id, "use that button")
        return Ask(
            "action", user, words, action_id.removeprefix("ledgerops."), subject_of(action.get("value"))
        )
    callback = str((body.get("view") or {}).get("callback_id") or "")
    words = VIEW_WORDS.get(callback, "submit that form")
    return Ask("view", user, words, str(kind or "interaction"), f"view:{callback[:60]}")


def subject_of(value: str | None) -> str:
    """What a button was about, for the audit row (best effort: the value may be junk)."""
    try:
        data = json.loads(value or "")
    except ValueError:
        return "unknown"
    if not isinstance(data, dict):
        return "unknown"
    for key, prefix in (
        ("posting", "posting"),
        ("document", "document"),
        ("group", "error_group"),
        ("integration", "integration"),
    ):
        if isinstance(data.get(key), int | str) and not isinstance(data.get(key), bool):
            return f"{prefix}:{str(data[key])[:60]}"
    return "unknown"


class AllowListGate(AsyncMiddleware):
    """Let a request through to its listener only when its sender may do what it asks."""

    def __init__(self, runtime: Runtime, bot: SlackBot):
        self.runtime = runtime
        self.bot = bot

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        ask = ask_of(req.body)
        if ask is None:
            return await next()
        allowed = await self.allows(ask.user)
        if allowed:
            return await next()
        words = ask.words if allowed is False else f"{ask.words} until Slack tells us your user groups"
        return self.refuse(req, ask, refusal(words, self.bot.gatekeeper.ask()))

    async def allows(self, user: str) -> bool | None:
        """True or False; ``None`` when the user group could not be read in time."""
        lookup = asyncio.ensure_future(self.bot.gatekeeper.allows(user))
        try:
            # shielded: a slow look-up still fills the cache for the next click
            return await asyncio.wait_for(asyncio.shield(lookup), GROUP_WAIT)
        except TimeoutError:
            log.warning("user group look-up is slow; refused %s for now", user)
            return None

    def refuse(self, req: AsyncBoltRequest, ask: Ask, answer: SlackBody) -> BoltResponse:
        """Audit, tell the person, and answer Slack now (never the listener)."""
        self.bot.work.spawn(self.audit(ask), name=f"refused:{ask.user}")
        if ask.kind == "command":
            return ok_json({"response_type": "ephemeral", "text": answer.text, "blocks": answer.blocks})
        if ask.kind == "view":
            block = first_input(req.body.get("view") or {})
            if block is not None:  # modal errors are plain text: no mentions, so no names
                text = (
                    f"You are not allowed to {ask.words}, so nothing was changed. "
                    "Ask someone on the allow-list."
                )
                return ok_json({"response_action": "errors", "errors": {block: text}})
        self.bot.work.spawn(self.tell(req, ask, answer), name=f"refusal:{ask.user}")
        return BoltResponse(status=200, body="")

    async def audit(self, ask: Ask) -> None:
        """The refusal's row in ``activity`` (the ids come from the request: cut and cleaned)."""
        await record(
            self.runtime.db,
            self.runtime.engine.clock(),
            actor=_column(ask.user, 40) or None,
            action=_column(ask.action, 40),
            subject=_column(ask.subject, 80),
            outcome="refused",
            detail={"reason": REASON},
        )

    async def tell(self, req: AsyncBoltRequest, ask: Ask, answer: SlackBody) -> None:
        """The ephemeral refusal: where the button was, else in the configured channel."""
        body = req.body
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        channel = channel or self.runtime.config.slack.channel  # an App Home button
        if not channel or not ask.user:
            return
        await call(
            self.bot.client.chat_postEphemeral(
                channel=str(channel), user=ask.user, text=answer.text, blocks=answer.blocks
            ),
            "chat.postEphemeral",
        )


def first_input(view: dict[str, Any]) -> str | None:
    """The block id of a modal's first input (where ``errors`` can show)."""
    for block in view.get("blocks") or []:
        if (
            isinstance(block, dict)
            and block.get("type") == "input"
            and isinstance(block.get("block_id"), str)
        ):
            return str(block["block_id"])
    return None


def _column(text: str, size: int) -> str:
    # PostgreSQL refuses NUL in text; a request's ids are the sender's to choose
    return text.replace("\x00", "")[:size]
