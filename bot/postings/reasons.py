"""Why a posting stands as it does, in whose words: the ledger's answer, ledgerops' own
reason, a booked voucher's change not sent, a run posted in part, a posting that waits."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    Block,
)

from bot.block_kit import (
    SECTION_TEXT,
    cut,
    escape,
    mention,
    quote,
    section,
    when,
)
from bot.postings.facts import (
    PostingNotice,
    Status,
    posting_label,
)
from storage.states import PostingState, Trigger
from sync.errors import ledger_did_not_answer, resync_cannot_help, said_by_ledgerops

# -- the message about one posting -----------------------------------------------------------


def refused(n: PostingNotice) -> bool:
    """Refused by ledgerops for what the document says (a test company): a resync cannot help."""
    return n.status is Status.FAILED and resync_cannot_help(n.posting.error_code)


def reasons(n: PostingNotice) -> list[Block]:
    """Why it stands as it does, labelled by whose words they are (by code and give-up, not text)."""
    p, status = n.posting, n.status
    if not p.last_error or status is Status.SYNCED:
        return []
    # the answer to a person's click: their resync failed now (never "gave up after N")
    manual = status is Status.FAILED and p.last_trigger == Trigger.MANUAL and bool(p.last_actor)
    tried = f"*Resync by {mention(p.last_actor)} {when(n.last_attempt_at)} failed.*\n" if manual else ""
    # ledgerops decided (a missing mapping, a test company) or explains a booked voucher
    if said_by_ledgerops(p.error_code) or status is Status.BOOKED:
        own = cut(escape(" ".join(p.last_error.split())), SECTION_TEXT - 120)
        return [section(f"{tried}*Why:*\nledgerops: {own}")]
    if status is Status.FAILED and ledger_did_not_answer(p.error_code):
        saw = cut(escape(" ".join(p.last_error.split())), SECTION_TEXT - 200)
        lead = (
            f"ledgerops stopped trying after {p.attempts} attempts: the ledger did not answer."
            if p.gave_up and not manual
            else "The ledger did not answer."
        )
        return [section(f"{tried}*Why:*\n{lead} Resync when it is back.\nWhat ledgerops saw: {saw}")]
    text = quote(p.last_error, SECTION_TEXT - 120)
    if status is not Status.FAILED:
        return [section(f"*Last error:*\n{text}")]
    said = section(f"{tried}*The ledger says:*\n{text}")
    if p.gave_up and not manual:
        why = (
            f"*Why:*\nledgerops stopped trying after {p.attempts} attempts: the ledger did not "
            "answer. Resync when it is back."
        )
        return [section(why), said]
    return [said]


def partly_posted(n: PostingNotice) -> list[Block]:
    """A document whose periods went one way and another: ``1 of 2 periods posted; 2026-11 failed``."""
    periods = {
        slot.partition(":")[2]: state
        for slot, state in n.sibling_states.items()
        if ":" in slot and state not in (PostingState.WITHDRAWN, PostingState.IGNORED)
    }
    posted = sorted(k for k, v in periods.items() if v in (PostingState.SYNCED, PostingState.BOOKED))
    failed = sorted(k for k, v in periods.items() if v == PostingState.FAILED)
    if not posted or not failed:
        return []
    return [
        section(
            f":warning: *Partly posted:* {len(posted)} of {len(periods)} periods posted "
            f"({', '.join(posted)}); {', '.join(failed)} failed."
        )
    ]


def booked_blocks(p: Any) -> list[Block]:
    """A booked voucher: what it is, the change it did not get (field by field), who handled it."""
    ref = escape(p.external_ref or "?")
    if not p.unsent_change and not p.needs_person and not p.handled_by:
        return [
            section(
                f"It is voucher *{ref}* there. A booked voucher cannot be "
                "changed, and sending it again would book the bill twice, so there is nothing to "
                "resync: correct it in the ledger (a credit note or a correcting entry)."
            )
        ]
    blocks: list[Block] = []
    if p.unsent_change:
        lines = "\n".join(f"• {escape(f'{field} {old} → {new}')}" for field, old, new in p.unsent_change)
        blocks.append(
            section(
                f"*Booked, change not sent:* voucher *{ref}* is booked, so ledgerops left it "
                f"as it is. The document changed:\n{lines}"
            )
        )
    elif p.last_error:
        blocks.append(section(quote(p.last_error, SECTION_TEXT - 40)))
    if p.needs_person:
        blocks.append(
            section(
                "Correct it in the ledger (a credit note or a correcting entry), then press *Mark handled*."
            )
        )
    elif p.handled_by:
        blocks.append(
            section(f":white_check_mark: Marked handled by {mention(p.handled_by)} {when(p.handled_at)}.")
        )
    return blocks


def waiting_dependents(n: PostingNotice) -> str:
    """``payment posting`` when a posting of the document waits for this one (else empty)."""
    waiting = [
        k
        for k, state in n.dependents
        if state in (PostingState.PENDING, PostingState.RETRYING, PostingState.WAITING)
    ]
    return " and ".join(posting_label(k) for k in waiting)
