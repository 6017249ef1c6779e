"""Switches that make the stand-in's Web API misbehave the way Slack does; all off by default.

Tests turn them on (the sandbox page never does): answers planned per method
(429 with ``Retry-After``, ``ok: false``, a 5xx before the work or after it,
which is a lost answer), a spell in which every call fails, and being down
(:class:`bot.local_slack.api_site.ApiSite` refuses connections; a connection
still open is answered 503 and closed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.local_slack.calls import Call

Answer = dict[str, Any]


@dataclass
class Planned:
    """One planned answer to a method's next call."""

    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    do_it: bool = False  # do the work, then answer with ``status`` (a lost answer)


@dataclass
class Spell:
    """Slack is broken for a while: every call answers ``status``.

    ``stores(n)`` says whether the ``n``-th ``chat.postMessage`` of the spell
    (from 0) is stored before the error answer ("500 after storing") or not.
    """

    status: int = 500
    stores: Callable[[int], bool] = lambda n: False
    posts: int = 0


@dataclass
class Faults:
    """What is wrong with Slack right now (nothing, unless a test says so)."""

    down: bool = False
    spell: Spell | None = None
    plans: dict[str, list[Planned]] = field(default_factory=dict)

    def break_for(self, *, status: int = 500, stores: Callable[[int], bool] = lambda n: False) -> None:
        """Answer every call with ``status`` until :meth:`mend`; see :class:`Spell`."""
        self.spell = Spell(status, stores)

    def mend(self) -> None:
        """End the spell."""
        self.spell = None

    def plan(self, method: str, *answers: Planned) -> None:
        """Answer the next calls of ``method`` like this (then normally again)."""
        self.plans.setdefault(method, []).extend(answers)

    def respond(self, method: str, call: Call, do: Callable[[], Answer]) -> web.Response:
        """Answer one authorised call: ``do()`` does the work, unless a fault stops it first."""
        if self.spell is not None:
            call.status = self.spell.status
            if method == "chat.postMessage":
                if self.spell.stores(self.spell.posts):
                    call.result = do()
                self.spell.posts += 1
            return _failed(self.spell.status, "internal_error")
        plans = self.plans.get(method)
        planned = plans.pop(0) if plans else None
        if planned is not None and not planned.do_it:
            call.status = planned.status
            headers = {"Retry-After": str(planned.retry_after)} if planned.retry_after else None
            return _failed(planned.status, planned.error or "ratelimited", headers)
        answer = do()
        call.result = answer
        if planned is not None:  # the work is done, the answer is lost
            call.status = planned.status
            return _failed(planned.status, "internal_error")
        call.ok = bool(answer.get("ok"))
        return web.json_response(answer)

    def refuse_while_down(self, call: Call) -> web.Response | None:
        """The answer on a connection that was open when Slack went down, or ``None``."""
        if not self.down:
            return None
        call.status = 503
        return web.Response(status=503, text="down", headers={"Connection": "close"})


def _failed(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
