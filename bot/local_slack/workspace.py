"""The stand-in's memory: users, channels, messages and threads, ephemerals, views.

Pure state with no I/O, so the Web API, the interaction forwarder and the page
all change and read one consistent picture. Every change bumps ``revision``
and wakes whoever waits in :meth:`Workspace.wait_change` (the page's live
stream). Shapes follow Slack's own JSON where the bot or the page sees them.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.local_slack.channel import Ephemeral, Message
from bot.local_slack.members import SLACKBOT, Person
from bot.local_slack.response_url import HOOK_SECONDS, Hook
from bot.local_slack.views import View

TRIGGER_SECONDS = 3.0  # Slack's: a trigger_id must be used within three seconds
KEEP_MESSAGES = 500  # per channel; older ones are forgotten (a sandbox runs for hours, not years)
KEEP_EPHEMERALS = 30  # per user


@dataclass
class Traffic:
    """One line of the page's traffic log: a Web API call or a request to the bot."""

    at: float
    direction: str  # "api" (bot -> Slack) | "bot" (Slack -> bot)
    what: str
    status: str


class Workspace:
    """One team, its channels and people, and everything the bot has shown them."""

    def __init__(
        self,
        *,
        team_name: str,
        channels: dict[str, str],
        people: list[Person],
        usergroups: dict[str, tuple[str, tuple[str, ...]]],
        bot: Person,
        commands: list[str],
        team_id: str = "T0SANDBOX",
        clock: Callable[[], float] = time.time,
    ):
        # ``clock`` dates new messages (their ts); tests pass their own clock.
        self.team_id, self.team_name, self.team_domain = team_id, team_name, "sandbox"
        self.clock = clock
        self.app_id, self.bot_id = "A0LEDGEROPS", "B0LEDGEROPS"
        self.bot = bot
        self.people: dict[str, Person] = {p.id: p for p in [*people, bot]}
        self.people[SLACKBOT] = Person(SLACKBOT, "slackbot", "Slackbot", is_bot=True)
        self.usergroups = dict(usergroups)
        self.channels = dict(channels)  # id -> name
        self.dm_channel = "D0LEDGEROPS"
        self.commands = list(commands)
        self.messages: dict[str, dict[str, Message]] = {c: {} for c in channels}
        self.ephemerals: dict[str, list[Ephemeral]] = {}
        self.modals: dict[str, list[View]] = {}
        self.homes: dict[str, View] = {}
        self.views: dict[str, View] = {}
        self.triggers: dict[str, tuple[str, float]] = {}
        self.hooks: dict[str, Hook] = {}
        self.notices: dict[str, list[dict[str, Any]]] = {}
        self.traffic: deque[Traffic] = deque(maxlen=40)
        self.revision = 0
        self._changed = asyncio.Event()
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self.closing = False
        #: told when a channel message is posted, changed or deleted (the channel file saves)
        self.on_messages_changed: Callable[[], None] | None = None

    # -- change notification ---------------------------------------------------------------
    def touch(self) -> None:
        """Something visible changed: wake the page streams."""
        self.revision += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, since: int, wait_seconds: float) -> int:
        """Wait until ``revision`` passes ``since`` (or ``wait_seconds``); return the revision."""
        if self.revision == since and not self.closing:
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), wait_seconds)
            except TimeoutError:
                pass
        return self.revision

    def close(self) -> None:
        """Server shutdown: let every stream return."""
        self.closing = True
        self.touch()

    def messages_changed(self) -> None:
        """A channel message changed: wake the page and tell whoever keeps the channel."""
        self.touch()
        if self.on_messages_changed is not None:
            self.on_messages_changed()

    # -- identifiers ----------------------------------------------------------------------
    def resume_after(self, ts: float) -> None:
        """Messages restored from a file: new timestamps come after ``ts``."""
        self._last_ts = max(self._last_ts, ts)

    def new_ts(self) -> str:
        """A Slack timestamp: unique and increasing within the workspace."""
        now = max(self.clock(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def new_id(self, prefix: str) -> str:
        """A Slack-looking id (``V0…`` for views, ``Ev0…`` for events)."""
        return f"{prefix}0{next(self._ids):06d}{secrets.token_hex(2).upper()}"

    def new_trigger(self, user: str, seconds: float = TRIGGER_SECONDS) -> str:
        """A trigger_id for a user's interaction (``views.open`` needs one within ``seconds``)."""
        now = time.monotonic()
        self.triggers = {k: v for k, v in self.triggers.items() if v[1] > now}
        trigger = f"{next(self._ids)}.{int(time.time())}.{secrets.token_hex(16)}"
        self.triggers[trigger] = (user, now + seconds)
        return trigger

    def use_trigger(self, trigger: str | None) -> tuple[str | None, str | None]:
        """``(user, None)`` for a valid trigger, else ``(None, slack_error)``; single use."""
        if not trigger:
            return None, "invalid_arguments"
        entry = self.triggers.pop(trigger, None)
        if entry is None:
            return None, "invalid_trigger_id"
        user, expires = entry
        if expires < time.monotonic():
            return None, "expired_trigger_id"
        return user, None

    def new_hook(
        self, user: str, channel: str, source: str, message_ts: str | None, *, command_line: str | None = None
    ) -> str:
        """A response_url token for an interaction (30 minutes, five uses)."""
        token = secrets.token_urlsafe(18)
        self.hooks[token] = Hook(
            user, channel, source, message_ts, time.monotonic() + HOOK_SECONDS, command_line=command_line
        )
        return token

    def log(self, direction: str, what: str, status: str) -> None:
        """One line in the traffic log (the page shows the last few)."""
        self.traffic.append(Traffic(time.time(), direction, what, status))
        self.touch()

    # -- people ---------------------------------------------------------------------------
    def person(self, user_id: str) -> Person | None:
        """A member by id (humans, the bot, Slackbot)."""
        return self.people.get(user_id)

    # -- messages -------------------------------------------------------------------------
    def post(
        self,
        channel: str,
        user: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        bot: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """Add a message (a reply when ``thread_ts`` names a message of the channel)."""
        msgs = self.messages[channel]
        parent = msgs.get(thread_ts) if thread_ts else None
        if parent is not None and parent.thread_ts:  # a reply to a reply joins the thread
            parent = msgs.get(parent.thread_ts)
        msg = Message(
            channel=channel,
            ts=self.new_ts(),
            user=user,
            text=text,
            blocks=blocks,
            attachments=attachments,
            thread_ts=parent.ts if parent else None,
            bot_id=self.bot_id if bot else None,
            metadata=metadata,
        )
        msgs[msg.ts] = msg
        if parent is not None:
            parent.replies.append(msg.ts)
        self._forget_old(channel)
        self.messages_changed()
        return msg

    def _forget_old(self, channel: str) -> None:
        msgs = self.messages[channel]
        top = [m for m in msgs.values() if not m.thread_ts]
        for old in top[: max(0, len(top) - KEEP_MESSAGES)]:
            for reply in old.replies:
                msgs.pop(reply, None)
            msgs.pop(old.ts, None)

    def message(self, channel: str, ts: str) -> Message | None:
        """A message (or thread reply) of a channel by its ts."""
        return self.messages.get(channel, {}).get(ts)

    def update(
        self,
        msg: Message,
        text: str,
        blocks: list[dict[str, Any]] | None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> None:
        """Replace a message's content in place (``chat.update``)."""
        msg.text, msg.blocks, msg.edited = text, blocks, self.new_ts()
        if attachments is not None:
            msg.attachments = attachments
        self.messages_changed()

    def delete(self, msg: Message) -> None:
        """Remove a message (and its place in its thread)."""
        msgs = self.messages[msg.channel]
        msgs.pop(msg.ts, None)
        if msg.thread_ts and msg.thread_ts in msgs:
            msgs[msg.thread_ts].replies.remove(msg.ts)
        self.messages_changed()

    # -- ephemerals and notices -------------------------------------------------------------
    def post_ephemeral(
        self,
        user: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        thread_ts: str | None = None,
        author: str | None = None,
    ) -> Ephemeral:
        """Show a message to one user only."""
        eph = Ephemeral(
            user=user,
            channel=channel,
            ts=self.new_ts(),
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            author=author or self.bot.id,
        )
        mine = self.ephemerals.setdefault(user, [])
        mine.append(eph)
        del mine[:-KEEP_EPHEMERALS]
        self.touch()
        return eph

    def ephemeral(self, user: str, ts: str) -> Ephemeral | None:
        """One of a user's ephemeral messages by its ts."""
        return next((e for e in self.ephemerals.get(user, []) if e.ts == ts), None)

    def dismiss(self, user: str, ts: str) -> None:
        """Forget an ephemeral message (the user closed it)."""
        self.ephemerals[user] = [e for e in self.ephemerals.get(user, []) if e.ts != ts]
        self.touch()

    def notice(self, user: str, text: str) -> None:
        """A short complaint from Slack itself (the bot did not answer, …), shown as a toast."""
        self.notices.setdefault(user, []).append({"id": next(self._ids), "text": text, "at": time.time()})
        del self.notices[user][:-5]
        self.touch()

    # -- views -----------------------------------------------------------------------------
    def open_modal(self, user: str, body: dict[str, Any], *, push: bool = False) -> View:
        """Open a modal (``views.open``), or stack it on the open one (``views.push``)."""
        stack = self.modals.setdefault(user, [])
        if not push:
            for old in stack:
                self.views.pop(old.id, None)
            stack.clear()
        previous = stack[-1] if stack else None
        view_id = self.new_id("V")
        view = View(
            id=view_id,
            user=user,
            body=body,
            hash=self._hash(),
            root_id=stack[0].id if stack else view_id,
            previous_id=previous.id if previous else None,
        )
        stack.append(view)
        self.views[view.id] = view
        self.touch()
        return view

    def replace_view(self, view: View, body: dict[str, Any]) -> View:
        """``views.update`` / ``response_action: update``: new content, same id, new hash."""
        view.body, view.hash, view.errors, view.values = body, self._hash(), {}, {}
        self.touch()
        return view

    def close_modal(self, user: str, view_id: str | None = None, *, all_: bool = False) -> list[View]:
        """Close the top modal (or every one); return what was closed."""
        stack = self.modals.get(user, [])
        if not stack or (view_id and stack[-1].id != view_id and not all_):
            return []
        closed = list(stack) if all_ else [stack[-1]]
        for v in closed:
            stack.remove(v)
            self.views.pop(v.id, None)
        self.touch()
        return closed

    def publish_home(self, user: str, body: dict[str, Any]) -> View:
        """Set a user's App Home (``views.publish``); the view id stays the same."""
        home = self.homes.get(user)
        if home is None:
            view_id = self.new_id("V")
            home = View(id=view_id, user=user, body=body, hash=self._hash(), root_id=view_id)
            self.homes[user] = home
            self.views[view_id] = home
        else:
            self.replace_view(home, body)
        self.touch()
        return home

    def find_view(self, view_id: str | None, external_id: str | None) -> View | None:
        """A view by id, or by the ``external_id`` the app gave it."""
        if view_id:
            return self.views.get(view_id)
        if external_id:
            return next((v for v in self.views.values() if v.body.get("external_id") == external_id), None)
        return None

    @staticmethod
    def _hash() -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"
