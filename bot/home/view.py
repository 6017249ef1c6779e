"""Pure builder of the App Home tab: status per integration with pause/resume, then attention.

No I/O: the listener (``handlers/home.py``) loads the overview and hands it here.
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, PlainTextObject
from slack_sdk.models.blocks.basic_components import ConfirmObject, MarkdownTextObject

from bot.actions import ActionId, IntegrationRef
from bot.block_kit import button, escape, section
from bot.commands.answers import attention_answer, integration_head
from sync.overview import AttentionGroup, BookedNotSent, IntegrationStatus


def home_view(
    statuses: Sequence[IntegrationStatus],
    groups: Sequence[AttentionGroup],
    can_change: bool,
    booked: Sequence[BookedNotSent] = (),
) -> dict[str, object]:
    """The App Home tab: status per integration with pause/resume, then what needs attention."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="ledgerops"))]
    for st in statuses[:15]:
        sec = section(integration_head(st))
        if can_change:
            paused = st.paused
            sec.accessory = button(
                "Resume" if paused else "Pause",
                ActionId.RESUME if paused else ActionId.PAUSE,
                IntegrationRef(integration=st.name),
                style="primary" if paused else None,
                confirm=None
                if paused
                else ConfirmObject(
                    title="Pause transfers?",
                    text=MarkdownTextObject(
                        text=f"Nothing is sent to *{escape(st.name)}* until "
                        "it is resumed. Nothing queued is lost."
                    ),
                    confirm="Pause",
                    deny="Cancel",
                ),
            )
        blocks.append(sec)
    blocks.append(DividerBlock())
    attention = attention_answer(groups, 1, can_change, booked)
    body = [b for b in attention.blocks if b.get("type") != "header"]
    blocks.append(section(f"*Needs attention* — {sum(g.failed for g in groups) + len(booked)} postings"))
    view_blocks = [b.to_dict() for b in blocks] + body
    return {"type": "home", "blocks": view_blocks[:100]}
