"""Every Web API call the stand-in received, as it received it (tests assert on these)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Call:
    """One Web API call."""

    method: str
    args: dict[str, Any]
    at: datetime | None  # the clock's time, to check pacing and backoff
    status: int = 200
    #: Slack did it and said so (a lost answer counts as not ok, though it was done)
    ok: bool = False
    result: dict[str, Any] = field(default_factory=dict)


class CallLog:
    """The calls in order; ``clock`` stamps them (the tests' clock)."""

    def __init__(self, clock: Callable[[], datetime] | None = None):
        self.clock = clock
        self.calls: list[Call] = []

    def record(self, method: str, args: dict[str, Any]) -> Call:
        """Note a call as it arrives; the answer fills in ``status``, ``ok`` and ``result``."""
        call = Call(method, dict(args), self.clock() if self.clock else None)
        self.calls.append(call)
        return call

    def of(self, method: str, **match: Any) -> list[Call]:
        """Calls of a method that Slack accepted, optionally matching some arguments."""
        return [
            c
            for c in self.calls
            if c.method == method and c.ok and all(c.args.get(k) == v for k, v in match.items())
        ]

    def posts(self) -> list[Call]:
        """Top-level messages posted (not thread replies)."""
        return [c for c in self.of("chat.postMessage") if not c.args.get("thread_ts")]

    def replies(self, ts: str) -> list[Call]:
        """Thread replies posted under ``ts``."""
        return self.of("chat.postMessage", thread_ts=ts)

    def ephemerals(self, user: str) -> list[Call]:
        """Ephemeral messages shown to ``user``."""
        return self.of("chat.postEphemeral", user=user)

    @staticmethod
    def ts_of(call: Call) -> str:
        """The ts Slack gave a posted message."""
        return str(call.result["ts"])
