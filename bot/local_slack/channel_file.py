"""The stand-in's channels on disk, so a restarted sandbox shows the messages it showed.

The bot keeps each message's ``ts`` in its outbox and updates the message in place;
after a restart with an empty channel every such update would find no message and
post it anew. The file sits beside the sandbox's SQLite database and its ledger file.
Written shortly after a message changes (a burst is one write) and on a clean stop.
Ephemerals, modals and the App Home are not kept: the bot publishes the Home again.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from bot.local_slack.channel import Message
from bot.local_slack.workspace import Workspace
from bot.sandbox.settings import KEPT_CHANNEL

FORMAT = 1
FILE_NAME = KEPT_CHANNEL
SAVE_AFTER = 0.5  # seconds: one write for a burst of posts and updates


class ChannelFile:
    """Loads a workspace's messages from ``path`` and saves them after they change."""

    def __init__(self, workspace: Workspace, path: Path):
        self.workspace = workspace
        self.path = path
        self._pending: asyncio.TimerHandle | None = None

    def load(self) -> int:
        """Put the saved messages back into their channels; how many were restored."""
        if not self.path.exists():
            return 0
        state = json.loads(self.path.read_text(encoding="utf-8"))
        if state.get("format") != FORMAT:
            return 0  # an older sandbox's file: start with an empty channel
        names = {f.name for f in fields(Message)}
        restored = 0
        for channel, rows in state["channels"].items():
            if channel not in self.workspace.messages:
                continue  # a channel the config no longer names
            msgs = self.workspace.messages[channel]
            for raw in rows:
                msg = Message(**{k: v for k, v in raw.items() if k in names})
                msgs[msg.ts] = msg
                restored += 1
        self.workspace.resume_after(
            max((float(ts) for m in self.workspace.messages.values() for ts in m), default=0)
        )
        return restored

    def changed(self) -> None:
        """A message changed: save soon (once for a burst)."""
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): save now
            self.save()
            return
        self._pending = loop.call_later(SAVE_AFTER, self.save)

    def save(self) -> None:
        """Write every channel's messages now (a new file moved into place)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        state: dict[str, Any] = {
            "format": FORMAT,
            "channels": {
                c: [asdict(m) for m in msgs.values()] for c, msgs in self.workspace.messages.items()
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(self.path.name + ".part")
        part.write_text(json.dumps(state), encoding="utf-8")
        os.replace(part, self.path)
