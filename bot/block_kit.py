"""Block Kit pieces every builder uses: the body, the limits, safe text, blocks, buttons.

Every builder returns a :class:`SlackBody` (fallback ``text`` + ``blocks``),
built with ``slack_sdk.models.blocks`` so Slack's own limits are checked when
the JSON is produced. Text from documents and ledgers goes through
:func:`escape` (``bot/plain_text.py``: one line, no control or bidi characters,
no formatting, secrets masked, ``&<>`` as entities so a supplier called
``<!channel>`` mentions nobody), and through :func:`cut` so no field passes a limit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.actions import ActionId, ButtonValue
from bot.plain_text import escape, plain

__all__ = ["escape", "plain"]  # re-exported: every builder takes them from here

#: Block Kit limits (https://api.slack.com/reference/block-kit/blocks)
SECTION_TEXT = 3000
FIELD_TEXT = 2000
BUTTON_TEXT = 75
MAX_BLOCKS = 50
MAX_FIELDS = 10
CONTEXT_ELEMENTS = 10
FALLBACK_TEXT = 3000  # the notification text; Slack allows more, people read less


@dataclass(frozen=True)
class SlackBody:
    """What chat.postMessage / chat.update / chat.postEphemeral send."""

    text: str
    blocks: list[dict[str, Any]]

    @property
    def hash(self) -> str:
        """Stable digest: an unchanged rendering is never sent again."""
        raw = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


# -- text safety -----------------------------------------------------------------------------


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in ``…`` when cut, never inside an entity."""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    amp = kept.rfind("&", max(0, len(kept) - 5))
    if amp != -1 and ";" not in kept[amp:]:
        kept = kept[:amp]  # "&am" would show as garbage; drop the half entity
    return kept + "…"


def quote(text: str, limit: int) -> str:
    """Escaped text as a block quote (every line), cut to ``limit``."""
    lines = escape(text).splitlines() or [""]
    return cut("\n".join(f">{line}" for line in lines), limit)


def when(ts: datetime | None) -> str:
    """A time every reader sees in their own zone, with a UTC fallback."""
    if ts is None:
        return "—"
    fallback = ts.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(ts.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def mention(user: str | None) -> str:
    """``<@U123>`` for a Slack user id we stored (ids are ours, not free text)."""
    if not user or not user.replace("_", "").isalnum():
        return "someone"
    return f"<@{user}>"


# -- block helpers -------------------------------------------------------------------------


def section(md: str, fields: Sequence[str] = ()) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=cut(md, SECTION_TEXT)) if md else None,
        fields=[MarkdownTextObject(text=cut(f, FIELD_TEXT)) for f in fields[:MAX_FIELDS]] or None,
    )


def context(*parts: str) -> ContextBlock:
    return ContextBlock(
        elements=[MarkdownTextObject(text=cut(p, SECTION_TEXT)) for p in parts[:CONTEXT_ELEMENTS] if p]
    )


def button(
    label: str,
    action: ActionId,
    value: ButtonValue,
    style: str | None = None,
    confirm: ConfirmObject | None = None,
) -> ButtonElement:
    """A button whose value is written by its model (see :mod:`bot.actions`)."""
    return ButtonElement(
        text=PlainTextObject(text=cut(label, BUTTON_TEXT)),
        action_id=action,
        value=value.value(),
        style=style,
        confirm=confirm,
    )


def finish(text: str, blocks: Sequence[Block]) -> SlackBody:
    """Serialise (which validates against the limits) and keep to 50 blocks."""
    dicts = [b.to_dict() for b in blocks[:MAX_BLOCKS]]
    return SlackBody(text=cut(text, FALLBACK_TEXT), blocks=dicts)
