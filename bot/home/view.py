"""Pure builder of the App Home tab: status per integration with pause/resume, then attention.

No I/O: the listener (``handlers/home.py``) loads the overview and hands it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import Block, DividerBlock, HeaderBlock, PlainTextObject
from slack_sdk.models.blocks.basic_components import ConfirmObject, MarkdownTextObject

from bot.actions import ActionId, IntegrationRef
from bot.block_kit import button, escape, section, when
from bot.commands.answers import attention_answer, integration_head
from sync.overview import AttentionGroup, BookedNotSent, IntegrationStatus

ABOUT = (
    "*About ledgerops*\nledgerops keeps the books in step with the systems where the money moves: "
    "bill pay, payroll and the other sources send their documents in, ledgerops posts each one "
    "into the accounting system, logs every attempt, retries what can be retried, and brings what "
    "needs a person into this channel with the buttons that fix it. `/ledger help` lists the commands."
)


def about_block(readme_url: str | None) -> Block:
    """What ledgerops is, in one paragraph, and where its README is."""
    where = (
        f"\n<{readme_url}|Read the README> for setup, every command and every button." if readme_url else ""
    )
    return section(ABOUT + where)


def jobs_block(jobs: Sequence[Any]) -> Block:
    """The scheduled jobs: what each does, when it runs next, how it last went."""
    lines = []
    for job in jobs:
        last = f"last {when(job.last_run)}: {escape(job.last_result)}" if job.last_run else "not run yet"
        nxt = f"next {when(job.next_run)}" if job.next_run else "not scheduled"
        lines.append(f"• *{escape(job.description)}* — {nxt} · {last}")
    return section("*Scheduled jobs*\n" + ("\n".join(lines) or "None are scheduled in this process."))


def home_view(
    statuses: Sequence[IntegrationStatus],
    groups: Sequence[AttentionGroup],
    can_change: bool,
    *,
    booked: Sequence[BookedNotSent] = (),
    jobs: Sequence[Any] = (),
    readme_url: str | None = None,
) -> dict[str, object]:
    """The App Home tab: status per integration with pause/resume, what needs attention,
    the scheduled jobs, and what ledgerops is."""
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
    tail = [DividerBlock(), jobs_block(jobs), DividerBlock(), about_block(readme_url)]
    view_blocks = [b.to_dict() for b in blocks] + body[: 100 - len(blocks) - len(tail)]
    return {"type": "home", "blocks": view_blocks + [b.to_dict() for b in tail]}
