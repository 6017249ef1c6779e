"""The Slack stand-in's Web API (``bot/local_slack``) on a loopback port, read the way tests read it.

All of Slack's behaviour, faults included, lives in the stand-in; this only
starts it with the tests' team, people and clock and offers what tests read:
the calls (``calls``, ``of``, ``posts``, ``replies``, ``ephemerals``) and the
channel's messages as dicts (``messages[ts]``; ``del`` is someone deleting it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.local_slack.api_site import ApiSite
from bot.local_slack.calls import CallLog
from bot.local_slack.faults import Faults
from bot.local_slack.members import Person
from bot.local_slack.web_api import WebApi
from bot.local_slack.workspace import Workspace

BOT_TOKEN = "xoxb-test-token"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
USERGROUP = "S0FINANCE"


class Messages(Mapping[str, dict[str, Any]]):
    """Every channel's messages by ts, each as ``{channel, ts, text, blocks, thread_ts[, metadata]}``."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def _find(self, ts: str) -> Any:
        for msgs in self.ws.messages.values():
            if ts in msgs:
                return msgs[ts]
        raise KeyError(ts)

    def __getitem__(self, ts: str) -> dict[str, Any]:
        m = self._find(ts)
        shown = {
            "channel": m.channel,
            "ts": m.ts,
            "text": m.text,
            "blocks": m.blocks,
            "thread_ts": m.thread_ts,
        }
        return shown | ({"metadata": m.metadata} if m.metadata else {})

    def __delitem__(self, ts: str) -> None:
        self.ws.delete(self._find(ts))

    def __iter__(self) -> Iterator[str]:
        every = [m for msgs in self.ws.messages.values() for m in msgs.values()]
        return iter(m.ts for m in sorted(every, key=lambda m: float(m.ts)))

    def __len__(self) -> int:
        return sum(len(m) for m in self.ws.messages.values())


class FakeSlack(CallLog):
    """The stand-in's Web API for one test: its workspace, its faults and every call it got."""

    def __init__(
        self,
        token: str = BOT_TOKEN,
        channels: Sequence[str] = ("C0FINANCE",),
        clock: Callable[[], datetime] | None = None,
    ):
        super().__init__(clock)  # no clock: real time, and calls are not stamped
        self.workspace = Workspace(
            team_name="Finance",
            team_id="T0TEAM",
            channels={c: c.lower() for c in channels},
            people=[Person(u, u.lower(), u) for u in (ALICE, BOB, MALLORY)],
            usergroups={USERGROUP: ("finance", (BOB,))},
            bot=Person("U0BOT", "ledgerops", "ledgerops", is_bot=True),
            commands=["/ledger"],
            clock=(lambda: clock().timestamp()) if clock else time.time,
        )
        self.faults = Faults()
        self.site = ApiSite(WebApi(self.workspace, token, faults=self.faults, calls=self))
        self.messages = Messages(self.workspace)
        self.usergroups = self.workspace.usergroups
        self.plan, self.break_for, self.mend = self.faults.plan, self.faults.break_for, self.faults.mend
        self.start, self.stop = self.site.start, self.site.stop  # serve on a free loopback port
        self.go_down, self.come_back = self.site.go_down, self.site.come_back

    @property
    def url(self) -> str:
        """``SLACK_API_URL`` for the bot."""
        return self.site.url

    def response_url(self, user: str = ALICE, channel: str = "C0FINANCE") -> str:
        """A ``response_url`` for a command; what the bot posts there is a ``response_url`` call."""
        return self.site.response_url(user, channel)

    def trigger(self, user: str = ALICE) -> str:
        """A trigger_id the stand-in issued for ``user`` (``views.open`` takes it once)."""
        return self.workspace.new_trigger(user, seconds=600)

    def action_ids(self, ts: str) -> list[str]:
        """The buttons the message shows now."""
        blocks = self.messages[ts].get("blocks") or []
        return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]

    def text_of(self, ts: str) -> str:
        """Everything the message shows now, as one string."""
        return json.dumps(self.messages[ts], ensure_ascii=False)
