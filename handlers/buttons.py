"""How every button listener is registered: ack at once, then work on the value, read once.

The ack is bolt's ``ack`` function, the work a bolt lazy listener (run by
:class:`bot.slack.LazyWork`, after the acks in flight). A listener never parses a
button value itself: :func:`listen` reads it with :func:`bot.actions.read_value`
and hands the work the model, or hands ``unreadable`` the error when the value
is not one we sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import ActionId, ButtonValue, read_value


@dataclass(frozen=True)
class Press:
    """One button press, as Slack describes it (who, where, how to answer)."""

    action: ActionId
    user: str
    channel: str | None
    #: answers through the message's ``response_url`` (``None`` when Slack sent none)
    respond: Any = None

    @classmethod
    def of(cls, action_id: ActionId, body: dict[str, Any], respond: Any = None) -> Press:
        """Who pressed it and in which channel (a message's, or the container's)."""
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        return cls(
            action=action_id, user=(body.get("user") or {}).get("id", ""), channel=channel, respond=respond
        )

    @property
    def short(self) -> str:
        """``resync_invoice``: the action's name in ``activity``."""
        return self.action.value.removeprefix("ledgerops.")


Work = Callable[[Press, Any], Awaitable[None]]
Unreadable = Callable[[Press, ValueError], Awaitable[None]]


async def ack_only(ack: Any) -> None:
    """The acknowledgement of a click: at once, empty (Slack shows an error after 3 s)."""
    await ack()


def listen(app: AsyncApp, action_id: ActionId, work: Work, unreadable: Unreadable) -> None:
    """Register ``work`` for the button ``action_id``: ack, then work on its parsed value."""

    async def lazy(body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        press = Press.of(action_id, body, respond)
        try:
            ref: ButtonValue = read_value(action_id, action.get("value"))
        except ValueError as exc:
            await unreadable(press, exc)
            return
        await work(press, ref)

    lazy.__name__ = lazy.__qualname__ = action_id.value  # the task's name
    app.action(action_id.value)(ack=ack_only, lazy=[lazy])
