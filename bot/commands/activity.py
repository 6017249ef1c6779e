"""Pure builders for who did what: ``/ledger activity`` pages and the channel's
announcement of a team change (pause, resume, map)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, HeaderBlock, PlainTextObject

from bot.actions import ActionId, ActivityPageRef
from bot.block_kit import SlackBody, button, context, escape, finish, mention, plain, section, when
from sync.log import ActivityEntry

#: what an ``activity`` row's action means, in words after the person's name
_DONE = {
    "pause": "paused",
    "resume": "resumed",
    "map": "changed a mapping of",
    "history": "sent the history of",
    "resync": "asked to resync",
    "resync_all": "asked to resync",
    "resync_many": "asked for a bulk resync",
    "resync_invoice": "asked to resync the invoice posting of",
    "resync_payment": "asked to resync the payment posting of",
    "resync_posting": "asked to resync",
    "resync_group": "asked to resync",
    "ignore": "ignored the",
    "show_log": "opened the log of",
}
_ICON = {"ok": ":ballot_box_with_check:", "refused": ":no_entry_sign:", "unchanged": ":heavy_minus_sign:"}


def _detail(e: ActivityEntry) -> str:
    d: dict[str, Any] = e.detail or {}
    if e.action == "map" and "source" in d:
        n = int(d.get("requeued", 0))
        what, source, number = (escape(str(d.get(k))) for k in ("what", "source", "number"))
        return f": {what} “{source}” → {number}, {n} failed posting{'s' if n != 1 else ''} queued again"
    if e.action in ("resync_many", "resync_all") and "documents" in d:
        return f": {d.get('documents')} documents, {d.get('queued')} postings queued"
    if e.action == "history" and "since" in d:
        return f" from {escape(str(d.get('since')))}: {d.get('queued')} postings queued"
    return ""


def activity_line(e: ActivityEntry) -> str:
    """One row: when, who, what to what, how it went."""
    icon = _ICON.get(e.outcome or "", ":small_blue_diamond:")
    words = _DONE.get(e.action, escape(e.action.replace("_", " ")))
    what = "" if e.subject == "bulk" else f" *{escape(e.subject)}*"
    outcome = "" if e.outcome in (None, "ok") else f" · *{escape(e.outcome or '')}*"
    return f"{icon} {when(e.at)} · {mention(e.actor)} {words}{what}{_detail(e)}{outcome}"


def activity_answer(
    entries: Sequence[ActivityEntry], since: str, page: int, next_before: int | None
) -> SlackBody:
    """``/ledger activity``: who did what, newest first, with "Older entries"."""
    span = f" since {escape(since[:10])}" if since else ""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=plain(f"Activity{span}")[:150]))]
    if not entries:
        blocks.append(section(f"Nobody did anything{span}."))
    blocks.extend(section(activity_line(e)) for e in entries)
    blocks.append(context(f"newest first · page {page}"))
    if next_before is not None:
        ref = ActivityPageRef(before=next_before, page=page + 1, since=since)
        blocks.append(ActionsBlock(elements=[button("Older entries", ActionId.ACTIVITY_PAGE, ref)]))
    return finish(f"Activity{span}: {len(entries)} entries on page {page}", blocks)


def team_change_message(e: ActivityEntry) -> SlackBody:
    """The channel's message when someone pauses, resumes or maps: who, what, what it means."""
    who, integration = mention(e.actor), f"*{escape(e.subject)}*"
    if e.action == "pause":
        text = (
            f":double_vertical_bar: {who} paused {integration}. Nothing is sent to it until someone "
            "resumes it (`/ledger resume` or the App Home); nothing queued is lost."
        )
    elif e.action == "resume":
        text = f":arrow_forward: {who} resumed {integration}. What waited is being sent now."
    else:
        text = f":link: {who} changed a mapping of {integration}{_detail(e)}."
    return finish(text, [section(text), context(when(e.at))])
