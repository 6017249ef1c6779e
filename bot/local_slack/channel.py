"""What a channel shows: messages and thread replies, and ephemerals only one user sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    """A message in a channel (top level, or a reply when ``thread_ts`` is set)."""

    channel: str
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    edited: str | None = None
    replies: list[str] = field(default_factory=list)
    #: Slack message metadata (``event_type``, ``event_payload``) the poster attached
    metadata: dict[str, Any] | None = None

    def to_slack(self) -> dict[str, Any]:
        """The message as Slack shows it to apps (``block_actions.message``)."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments is not None:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.replies:
            out["thread_ts"] = self.ts
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1]
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.edited}
        return out


@dataclass
class Ephemeral:
    """A message only one user sees (until they dismiss it)."""

    user: str
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    author: str = ""  # the bot, or Slackbot for Slack's own complaints
