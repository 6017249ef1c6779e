"""Pure builders: database facts -> Block Kit JSON for the channel messages.

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
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.actions import ActionId, ButtonValue, GroupRef, PostingIdRef, PostingRef
from bot.facts import (
    GroupNotice,
    PostingNotice,
    Status,
    document_fields,
    document_title,
    plural,
    posting_label,
)
from bot.plain_text import escape, plain
from storage.states import PostingState
from sync.kinds import KINDS

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
    blocks: list[Block] = [section(headline, _fact_fields(n))]
    if status is Status.BOOKED:
        blocks.append(
            section(
                f"It is voucher *{escape(p.external_ref or '?')}* there. A booked voucher cannot be "
                "changed, and sending it again would book the bill twice, so there is nothing to "
                "resync: correct it in the ledger (a credit note or a correcting entry)."
            )
        )
    if p.last_error and status is not Status.SYNCED:
        heading = "*The ledger says:*" if status in (Status.FAILED, Status.BOOKED) else "*Last error:*"
        blocks.append(section(f"{heading}\n{quote(p.last_error, SECTION_TEXT - 40)}"))
    if status is Status.SYNCED:
        who = f" Fixed by {mention(n.fixed_by)}." if n.fixed_by else ""
        blocks.append(section(f"Voucher *{escape(p.external_ref or '?')}*.{who}"))
    elif status in (Status.QUEUED, Status.SENDING) and p.queued_actor:
        blocks.append(section(f":raised_hand: Resync requested by {mention(p.queued_actor)}."))
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
    return finish(escape(text), blocks)


def _fact_fields(n: PostingNotice) -> list[str]:
    fields = [f"*{label}*\n{escape(value)}" for label, value in document_fields(n.document)]
    fields.append(f"*Posting*\n{posting_label(n.posting.kind, n.posting.period).capitalize()}")
    fields.append(f"*Integration*\n{escape(n.posting.integration)}")
    return fields


def _posting_buttons(n: PostingNotice) -> list[ButtonElement]:
    p, doc, status = n.posting, n.document, n.status
    log = button("Show log", ActionId.SHOW_LOG, PostingRef(document=doc.id, posting=p.id))
    if status not in (Status.FAILED, Status.RETRYING, Status.WAITING, Status.IGNORED):
        return [log]  # queued/sending: already on its way; synced/booked: nothing to do
    ids = PostingRef(document=doc.id, posting=p.id)
    out: list[ButtonElement] = []
    if doc.kind == "bill":
        if n.sibling_states.get("invoice", PostingState.FAILED) != PostingState.BOOKED:
            out.append(button("Resync invoice posting", ActionId.RESYNC_INVOICE, ids, "primary"))
        # Only a paid bill has a payment posting (the users' own rule).
        if doc.is_paid_bill and n.sibling_states.get("payment") != PostingState.BOOKED:
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
                    "sent to the ledger until someone resyncs it.",
                    confirm="Ignore",
                    deny="Cancel",
                ),
            )
        )
    return out


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
    """Who asked for the resync (while it runs) or who fixed it (once resolved)."""
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
    return f"Resolved: {g.title} ({g.integration})"


def _member_line(doc: Any) -> str:
    kind = KINDS.get(doc.kind)
    return kind.summary(doc.data, doc.external_id) if kind is not None else document_title(doc)
