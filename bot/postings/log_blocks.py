"""Pure builders for the integration log: thread replies, Show log pages, ephemeral notes."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, DividerBlock

from bot.actions import ActionId, LogPageRef
from bot.block_kit import (
    SECTION_TEXT,
    SlackBody,
    button,
    context,
    escape,
    finish,
    mention,
    quote,
    section,
    when,
)
from bot.postings.facts import DocumentFacts, LogEntry, PostingNotice, document_title, posting_label
from bot.postings.messages import _posting_buttons  # the message's own buttons, not a copy
from sync.voucher_change import BOOKED_CHANGE, CHANGE_NOT_SENT
from sync.withdrawal import WITHDRAW_BOOKED

#: entries on one Show log page: 1 section each + 4 framing blocks stays far below 50 blocks
LOG_PAGE_SIZE = 15
#: entries copied into one thread reply (more are summarised; Show log has them all)
THREAD_ENTRIES = 10
ENTRY_TEXT = 1500  # one entry's share, so a page stays readable

_OUTCOME_ICON = {
    "synced": ":white_check_mark:",
    "failed": ":red_circle:",
    "retrying": ":hourglass_flowing_sand:",
    "booked": ":lock:",
    "uncertain": ":grey_question:",
    "refused": ":no_entry_sign:",
    "ok": ":ballot_box_with_check:",
}

_ACTION_WORDS = {
    "resync": "asked for a resync",
    "resync_all": "asked to resync the whole group",
    "resync_many": "asked for a bulk resync",
    "ignore": "ignored a posting",
    "mark_handled": "marked a booked voucher's change handled",
    "resync_invoice": "asked to resync the invoice posting",
    "resync_payment": "asked to resync the payment posting",
    "resync_posting": "asked for a resync",
    "resync_group": "asked to resync a group",
    "show_log": "opened the log",
}


#: what happened, for attempts whose operation and outcome alone would not say it
_SAID = {
    BOOKED_CHANGE: f"*{CHANGE_NOT_SENT}*",
    "handled": "*marked handled*",
    WITHDRAW_BOOKED: "*not withdrawn: voucher booked*",
}


def entry_text(e: LogEntry) -> str:
    """One log line in mrkdwn: when, what, who, outcome, then the ledger's own text."""
    icon = _OUTCOME_ICON.get(e.outcome, ":small_blue_diamond:")
    if e.action:
        words = _ACTION_WORDS.get(e.action, escape(e.action.replace("_", " ")))
        head = f"{icon} {when(e.at)} · {mention(e.actor)} {words} · *{escape(e.outcome)}*"
    else:
        what = posting_label(*(e.posting or "posting").split(":", 1)) if e.posting else "posting"
        by = f" by {mention(e.actor)}" if e.actor else ""
        happened = _SAID.get(e.error_code or "") or f"{escape(e.operation or 'none')} → *{escape(e.outcome)}*"
        head = f"{icon} {when(e.at)} · {what} · {escape(e.trigger or 'auto')}{by} · {happened}"
        if e.external_ref:
            head += f" · voucher {escape(e.external_ref)}"
    if e.message:
        head += "\n" + quote(e.message, ENTRY_TEXT)
    return head


def thread_reply(entries: Sequence[LogEntry]) -> SlackBody:
    """New attempts for a message's thread, oldest first (a thread reads downwards)."""
    ordered = sorted(entries, key=lambda e: (e.at, e.order))
    shown = ordered[-THREAD_ENTRIES:]
    blocks: list[Block] = []
    skipped = len(ordered) - len(shown)
    if skipped:
        blocks.append(context(f"{skipped} earlier attempts are in Show log."))
    blocks.extend(section(entry_text(e)) for e in shown)
    last = shown[-1]
    text = f"{last.posting or 'posting'}: {last.outcome}"
    if last.message:
        text += f": {last.message}"
    return finish(escape(text), blocks)


def log_page(
    doc: DocumentFacts,
    integration: str,
    integration_id: int,
    entries: Sequence[LogEntry],
    page: int,
    has_more: bool,
    resync: Sequence[ButtonElement] = (),
) -> SlackBody:
    """One page of a document's integration log, newest first, with "Older entries", and
    the resync buttons its message has (``resync``: see :func:`resync_buttons`)."""
    title = escape(document_title(doc))
    blocks: list[Block] = [
        section(f":scroll: *Integration log* of {title} in *{escape(integration)}*"),
        context(f"{escape(doc.key)} · newest first · page {page + 1}"),
    ]
    if resync:
        blocks.append(ActionsBlock(elements=list(resync)[:5]))
    blocks.append(DividerBlock())
    if not entries:
        blocks.append(section("Nothing has been sent for it yet."))
    blocks.extend(section(entry_text(e)) for e in entries[:LOG_PAGE_SIZE])
    if has_more:
        blocks.append(
            ActionsBlock(
                elements=[
                    button(
                        "Older entries",
                        ActionId.LOG_PAGE,
                        LogPageRef(document=doc.id, integration=integration_id, page=page + 1),
                    )
                ]
            )
        )
    return finish(f"Integration log of {escape(document_title(doc))} ({escape(integration)})", blocks)


_RESYNC = (ActionId.RESYNC_INVOICE, ActionId.RESYNC_PAYMENT, ActionId.RESYNC_POSTING)


def resync_buttons(notices: Sequence[PostingNotice]) -> list[ButtonElement]:
    """The resync buttons the document's messages have, once each (resync from the log)."""
    out: dict[str, ButtonElement] = {}
    for n in notices:
        for b in _posting_buttons(n):
            if b.action_id in _RESYNC:
                out.setdefault(str(b.text.text if b.text else b.action_id), b)
    return list(out.values())


def note(text: str) -> SlackBody:
    """A short ephemeral answer (text is ours; anything from outside must be escaped first)."""
    return finish(text, [section(text[:SECTION_TEXT])])


def refusal(action_words: str, ask: str) -> SlackBody:
    """The ephemeral answer to someone outside the allow-list: nothing changed."""
    return note(f":no_entry: You are not allowed to {action_words}, so nothing was changed. Ask {ask}.")


def outcome_note(messages: Sequence[str]) -> SlackBody:
    """What an action did, in the engine's words (escaped: they quote ledger values)."""
    return note("\n".join(f"• {escape(m)}" for m in messages) or "Nothing to do.")
