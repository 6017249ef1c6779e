"""Pure builders: database facts -> Block Kit JSON for the channel messages about postings.

One message per posting (:func:`posting_message`), one per error group
(:func:`group_message`), for whatever state it is in now; the pieces and the
text rules are :mod:`bot.block_kit`'s.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    SectionBlock,
)

from bot.actions import ActionId, GroupRef, HandledRef, PostingIdRef, PostingRef
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
from bot.postings.facts import (
    GroupNotice,
    PostingNotice,
    Status,
    document_fields,
    document_title,
    plural,
    posting_label,
)
from bot.postings.reasons import booked_blocks, partly_posted, reasons, refused, waiting_dependents
from storage.states import Outcome, PostingState
from sync.kinds import KINDS

# -- the message about one posting -----------------------------------------------------------

_HEADLINES = {
    Status.FAILED: ":red_circle: *The {label} of {doc} could not be posted* to *{integ}*.",
    Status.QUEUED: ":arrows_counterclockwise: *The {label} of {doc} is queued* for *{integ}*.",
    Status.SENDING: ":arrows_counterclockwise: *The {label} of {doc} is being sent* to *{integ}*.",
    Status.RETRYING: ":hourglass_flowing_sand: *{integ} could not be reached* for the {label} "
    "of {doc}; it is tried again on its own.",
    Status.WAITING: ":double_vertical_bar: *The {label} of {doc} is waiting* for *{integ}*.",
    Status.SYNCED: ":white_check_mark: *The {label} of {doc} is synced* to *{integ}*.",
    Status.IGNORED: ":no_entry_sign: *The {label} of {doc} is ignored*; it will not be sent to *{integ}*.",
    Status.BOOKED: ":lock: *The {label} of {doc} is booked* in *{integ}*.",
    Status.WITHDRAWN: ":wastebasket: *The {label} of {doc} is withdrawn* from *{integ}*: the document "
    "no longer needs it, and nothing of it is left in the ledger.",
}


def posting_message(n: PostingNotice) -> SlackBody:
    """The channel message about one posting, for whatever state it is in now."""
    p, doc, status = n.posting, n.document, n.status
    label = posting_label(p.kind, p.period)
    title = escape(document_title(doc))
    integ = escape(p.integration)
    headline = _HEADLINES[status].format(label=label, doc=title, integ=integ)
    if refused(n):
        headline = f":no_entry: *The {label} of {title} is refused*: it is not sent to *{integ}*."
    blocks: list[Block] = [section(headline, _fact_fields(n))]
    blocks.extend(partly_posted(n))
    if status is Status.BOOKED:
        blocks.extend(booked_blocks(p))
    elif status is Status.WAITING and p.waiting_for:
        blocks.append(section(f"It is {escape(p.waiting_for)}: it is sent once that one is in the ledger."))
    else:
        blocks.extend(reasons(n))
    if status is Status.FAILED and waiting_dependents(n):
        blocks.append(
            section(f"The {waiting_dependents(n)} waits for this one: it is sent once this is synced.")
        )
    if status is Status.SYNCED:
        who = f" Fixed by {mention(n.fixed_by)}." if n.fixed_by else ""
        blocks.append(section(f"Voucher *{escape(p.external_ref or '?')}*.{who}"))
    elif status in (Status.QUEUED, Status.SENDING) and p.queued_actor:
        at = f" {when(p.queued_at)}" if p.queued_at else ""
        blocks.append(section(f":raised_hand: Resync requested by {mention(p.queued_actor)}{at}."))
    elif status is Status.IGNORED and p.queued_actor:
        blocks.append(section(f"Ignored by {mention(p.queued_actor)}."))
    elif status is Status.RETRYING and p.next_attempt_at:
        blocks.append(section(f"Next try {when(p.next_attempt_at)}."))
    blocks.append(
        context(f"{escape(doc.key)} · attempts: {p.attempts} · last attempt {when(n.last_attempt_at)}")
    )
    actions = _posting_buttons(n)
    if actions:
        blocks.append(ActionsBlock(elements=actions))
    text = _plain_headline(status, label, document_title(doc), p.integration, p.last_error)
    if refused(n):
        text = f"The {label} of {document_title(doc)} is refused: {p.last_error}"
    return finish(escape(text), blocks)


def shown_in_group(n: PostingNotice) -> SlackBody:
    """A posting's own message once its error group's message shows it: what failed and
    where to act, and only Show log (a failure has one place to act on)."""
    p, doc = n.posting, n.document
    label = posting_label(p.kind, p.period)
    title = document_title(doc)
    blocks: list[Block] = [
        section(
            f":arrow_down: *The {label} of {escape(title)} fails like others* in *{escape(p.integration)}*: "
            "it is shown, with Resync all, in the group message below."
        )
    ]
    if p.last_error:
        blocks.append(section(f"*Reason:*\n{quote(p.last_error, SECTION_TEXT - 40)}"))
    blocks.append(context(f"{escape(doc.key)} · attempts: {p.attempts}"))
    # its history stays one click away; what to do about it is in the group's message
    blocks.append(
        ActionsBlock(
            elements=[button("Show log", ActionId.SHOW_LOG, PostingRef(document=doc.id, posting=p.id))]
        )
    )
    return finish(escape(f"The {label} of {title} fails like others: see the group message."), blocks)


def _fact_fields(n: PostingNotice) -> list[str]:
    fields = [f"*{label}*\n{escape(value)}" for label, value in document_fields(n.document)]
    kind = KINDS.get(n.document.kind)
    if kind is not None:
        shown = kind.posting_fields(n.document.data, n.posting.kind, n.posting.period)
        fields.extend(f"*{label}*\n{escape(value)}" for label, value in shown)
    fields.append(f"*Posting*\n{posting_label(n.posting.kind, n.posting.period).capitalize()}")
    fields.append(f"*Integration*\n{escape(n.posting.integration)}")
    return fields


def _posting_buttons(n: PostingNotice) -> list[ButtonElement]:
    p, doc, status = n.posting, n.document, n.status
    log = button("Show log", ActionId.SHOW_LOG, PostingRef(document=doc.id, posting=p.id))
    if status is Status.BOOKED and p.needs_person:
        return [_mark_handled(p), log]
    if status not in (Status.FAILED, Status.RETRYING, Status.WAITING, Status.IGNORED):
        return [log]  # queued/sending: already on its way; synced/booked: nothing to do
    ids = PostingRef(document=doc.id, posting=p.id)
    out: list[ButtonElement] = []
    if refused(n):
        pass  # a resync would be refused the same way: the reason and Ignore only
    elif doc.kind == "bill":
        if n.sibling_states.get("invoice", PostingState.FAILED) != PostingState.BOOKED:
            out.append(button("Resync invoice posting", ActionId.RESYNC_INVOICE, ids, "primary"))
        # Only a paid bill has a payment posting (the users' own rule).
        # ... and not while the payment waits for this invoice: it follows the invoice on its own
        waits = waiting_dependents(n)
        if doc.is_paid_bill and n.sibling_states.get("payment") != PostingState.BOOKED and not waits:
            out.append(button("Resync payment posting", ActionId.RESYNC_PAYMENT, ids))
    else:
        out.append(
            button(f"Resync {posting_label(p.kind, p.period)}", ActionId.RESYNC_POSTING, ids, "primary")
        )
    out.append(log)
    if status is not Status.IGNORED:
        out.append(
            button(
                "Ignore",
                ActionId.IGNORE,
                PostingIdRef(posting=p.id),
                "danger",
                ConfirmObject(
                    title="Ignore this posting?",
                    text=f"The {posting_label(p.kind, p.period)} will not be "
                    f"sent to the ledger until someone resyncs it.{_ignore_warning(n)}",
                    confirm="Ignore",
                    deny="Cancel",
                    style="danger",
                ),
            )
        )
    return out


def _mark_handled(p: Any) -> ButtonElement:
    ref = p.external_ref or "?"
    return button(
        "Mark handled",
        ActionId.MARK_HANDLED,
        HandledRef(posting=p.id, voucher=ref),
        "primary",
        ConfirmObject(
            title="Mark it handled?",
            text=f"Only once voucher {ref} is corrected in the ledger: ledgerops never changes a "
            "booked voucher. The posting leaves /ledger attention.",
            confirm="Mark handled",
            deny="Cancel",
        ),
    )


def _ignore_warning(n: PostingNotice) -> str:
    """What ignoring this posting does to the postings of the document that wait for it."""
    this = posting_label(n.posting.kind, n.posting.period)
    noun = n.document.kind.replace("_", " ")
    words = []
    for kind, state in n.dependents:
        label = posting_label(kind)
        if state in (PostingState.SYNCED, PostingState.BOOKED):
            words.append(
                f" The {label} of this {noun} is already in the ledger; ignoring the {this} "
                f"leaves it without its {n.posting.kind.replace('_', ' ')}."
            )
        elif state in (PostingState.PENDING, PostingState.RETRYING, PostingState.WAITING):
            words.append(
                f" The {label} of this {noun} waits for the {this}; ignoring the {this} "
                "sends it on its own, without it."
            )
    return "".join(words)


def _plain_headline(status: Status, label: str, doc: str, integration: str, error: str | None) -> str:
    verb = {
        Status.FAILED: "could not be posted to",
        Status.BOOKED: "is booked in",
        Status.SYNCED: "is synced to",
        Status.IGNORED: "is ignored for",
        Status.WITHDRAWN: "is withdrawn from",
        Status.RETRYING: "is retrying for",
        Status.WAITING: "is waiting for",
        Status.SENDING: "is being sent to",
    }.get(status, "is queued for")
    text = f"The {label} of {doc} {verb} {integration}."
    if error and status in (Status.FAILED, Status.BOOKED):
        text += f" {error}"
    return text


# -- the message about an error group --------------------------------------------------------

SAMPLE_SIZE = 10


def group_message(g: GroupNotice) -> SlackBody:
    """One message for many postings failing the same way, with Resync all."""
    blocks: list[Block] = [section(_group_headline(g)), _group_context(g)]
    if g.failing and g.sample:
        blocks.append(_group_sample(g))
    blocks.append(_group_progress(g))
    blocks.extend(_group_people(g))
    if g.failing:
        blocks.append(_resync_all(g))
    return finish(escape(_group_text(g)), blocks)


def _group_headline(g: GroupNotice) -> str:
    title = escape(g.title)
    if g.status is Status.FAILED:
        return f":rotating_light: *{g.failing} {plural(g.document_kinds, g.failing)}: {title}*"
    if g.status is Status.QUEUED:
        return (
            f":arrows_counterclockwise: *Resyncing {g.in_progress} "
            f"{plural(g.document_kinds, g.in_progress)}:* {title}"
        )
    if not g.total:  # its postings all failed another way since, or were withdrawn
        return (
            f":white_check_mark: *No longer failing this way:* {title}\n"
            "Its postings were sent again (or wait with an outage of the ledger); "
            "any that fail again are shown in a newer message."
        )
    return f":white_check_mark: *Resolved:* {title} ({g.total} {plural(g.document_kinds, g.total)})"


def _group_context(g: GroupNotice) -> ContextBlock:
    return context(
        f"*{escape(g.integration)}*",
        f"error `{escape(g.error_code)}`",
        f"first seen {when(g.first_seen)}",
        f"last seen {when(g.last_seen)}",
    )


def _group_sample(g: GroupNotice) -> SectionBlock:
    """A few of the failing documents, then how many more there are."""
    lines = [
        f"• {escape(_member_line(m.document))} · {posting_label(m.posting_kind)}"
        for m in g.sample[:SAMPLE_SIZE]
    ]
    more = g.failing - len(lines)
    if more > 0:
        lines.append(f"…and {more} more")
    return section("\n".join(lines))


def _group_progress(g: GroupNotice) -> ContextBlock:
    progress = ", ".join(
        f"{count} {state.replace('_', ' ')}" for state, count in sorted(g.counts.items()) if count
    )
    return context(f"Postings: {progress or 'none'}")


def _group_people(g: GroupNotice) -> list[Block]:
    """Who asked for the resync (while it runs), what their try got (still failing), or
    who fixed it (once resolved)."""
    tried = g.last_try
    if tried is not None and g.status is Status.FAILED and tried.outcome == Outcome.FAILED:
        reason = escape(tried.message or g.title)
        return [
            section(f":x: Tried again {when(tried.at)} by {mention(tried.actor)}: failed again — {reason}")
        ]
    if g.requested_by and g.status is Status.QUEUED:
        who = ", ".join(mention(u) for u in g.requested_by[:10])
        return [section(f":raised_hand: Resync requested by {who}.")]
    if g.fixed_by and g.status is Status.RESOLVED:
        return [section(f"Fixed by {', '.join(mention(u) for u in g.fixed_by[:10])}.")]
    return []


def _resync_all(g: GroupNotice) -> ActionsBlock:
    noun = plural(g.document_kinds, g.failing)
    return ActionsBlock(
        elements=[
            button(
                f"Resync all {g.failing} {noun}",
                ActionId.RESYNC_GROUP,
                GroupRef(group=g.group_id),
                "primary",
                ConfirmObject(
                    title="Resync them all?",
                    text=f"Every posting of these {g.failing} {noun} is sent again "
                    "(invoice, and payment where paid).",
                    confirm="Resync all",
                    deny="Cancel",
                ),
            )
        ]
    )


def _group_text(g: GroupNotice) -> str:
    """The notification text (unescaped; ``group_message`` escapes it)."""
    if g.status is Status.FAILED:
        return f"{g.failing} {plural(g.document_kinds, g.failing)}: {g.title} ({g.integration})"
    if g.status is Status.QUEUED:
        return f"Resyncing {g.in_progress}: {g.title} ({g.integration})"
    if not g.total:
        return f"No longer failing this way: {g.title} ({g.integration})"
    return f"Resolved: {g.title} ({g.integration})"


def _member_line(doc: Any) -> str:
    kind = KINDS.get(doc.kind)
    return kind.summary(doc.data, doc.external_id) if kind is not None else document_title(doc)
