"""Pure pieces of the bulk resync: the selection read from a modal, the modal, the progress message."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ContextBlock,
    DatePickerElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextObject,
    SectionBlock,
    StaticMultiSelectElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.actions import ActionId
from bot.block_kit import plain
from storage.states import PostingState
from sync.bulk import BulkFilter
from sync.lookup import summary

BULK_CALLBACK = "ledgerops.bulk_resync"
STATE_CHOICES = (PostingState.FAILED, PostingState.RETRYING, PostingState.WAITING, PostingState.SYNCED)
SHOWN_DOCUMENTS = 100  # a multi-select holds at most 100 options
_NARROWING = ActionId.BULK_FILTER.value  # every narrowing field re-counts the modal


@dataclass(frozen=True)
class BulkSelection:
    """What the person chose in the modal."""

    integration: str | None = None
    states: tuple[str, ...] = (PostingState.FAILED,)
    since: date | None = None
    until: date | None = None
    error_group: int | None = None
    documents: tuple[int, ...] = ()
    channel: str = ""
    confirmed: bool = False

    def filter(self, integration_ids: Mapping[str, int]) -> BulkFilter:
        return BulkFilter(
            integration=self.integration if self.integration in integration_ids else None,
            states=self.states or (PostingState.FAILED,),
            since=self.since,
            until=self.until,
            error_group_id=self.error_group,
            document_ids=self.documents or None,
        )

    def errors(self, integrations: Mapping[str, Any]) -> dict[str, str]:
        """Problems to show beside the fields (``response_action: errors``)."""
        out: dict[str, str] = {}
        if self.since and self.until and self.since > self.until:
            out["until"] = "The end date is before the start date."
        if self.integration and self.integration not in integrations:
            out["integration"] = "No such integration."
        if not self.confirmed:
            out["confirm"] = "Tick the box to confirm."
        return out

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> BulkSelection:
        """Read the selection from a modal's state (anything odd is left out, not guessed)."""
        values = (view.get("state") or {}).get("values") or {}

        def element(block: str) -> dict[str, Any]:
            found = values.get(block) or {}
            return next(iter(found.values()), {}) if isinstance(found, dict) else {}

        def selected(block: str) -> str | None:
            opt = element(block).get("selected_option") or {}
            return opt.get("value") if isinstance(opt, dict) else None

        def many(block: str) -> list[str]:
            opts = element(block).get("selected_options") or []
            return [o.get("value") for o in opts if isinstance(o, dict) and o.get("value")]

        def day(block: str) -> date | None:
            raw = element(block).get("selected_date")
            try:
                return date.fromisoformat(raw) if raw else None
            except ValueError:
                return None

        meta = _metadata(view.get("private_metadata"))
        states = tuple(s for s in many("states") if s in {c.value for c in STATE_CHOICES})
        group = selected("group")
        return cls(
            integration=selected("integration") or None,
            states=states or (PostingState.FAILED,),
            since=day("since"),
            until=day("until"),
            error_group=int(group) if group and group.isdigit() else None,
            documents=tuple(int(d) for d in many("documents") if d.isdigit()),
            channel=str(meta.get("channel") or ""),
            confirmed="yes" in many("confirm"),
        )


def _metadata(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _option(text: str, value: str) -> Option:
    # group titles and document ids come from ledgers and sources: one plain line
    return Option(text=PlainTextObject(text=plain(text)[:75] or "?"), value=value[:150])


def bulk_modal(
    sel: BulkSelection,
    count: int,
    documents: Sequence[Any],
    integrations: Sequence[str],
    groups: Sequence[Any],
) -> dict[str, Any]:
    """The modal: the count, the fields that narrow it, the first 100 documents, confirm."""
    blocks: list[Any] = [
        _count_section(count),
        _integration_input(sel, integrations),
        _states_input(sel),
        _date_input("since", "Documents dated from", sel.since),
        _date_input("until", "Documents dated until", sel.until),
    ]
    optional = (_group_input(sel, groups), _documents_input(documents))
    blocks += [block for block in optional if block is not None]
    blocks += [_confirm_input(count), _progress_note()]
    view = View(
        type="modal",
        callback_id=BULK_CALLBACK,
        title=PlainTextObject(text="Resync in bulk"),
        submit=PlainTextObject(text="Resync"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"channel": sel.channel}),
        blocks=blocks,
    )
    return view.to_dict()


def _count_section(count: int) -> SectionBlock:
    """How many documents the resync takes, and what it sends for each."""
    return SectionBlock(
        text=MarkdownTextObject(
            text=(
                f"*{count:,} document{'s' if count != 1 else ''}* will be resynced: unpaid bills "
                "get their invoice posting sent again, paid bills their invoice and payment "
                "postings. Booked vouchers are never touched."
            )
        )
    )


def _integration_input(sel: BulkSelection, integrations: Sequence[str]) -> InputBlock:
    """Narrow to one integration (all of them when none is chosen)."""
    options = [_option(n, n) for n in integrations[:100]]
    return InputBlock(
        block_id="integration",
        label="Integration",
        optional=True,
        dispatch_action=True,
        element=StaticSelectElement(
            action_id=_NARROWING,
            placeholder="All integrations",
            options=options or [_option("none", "-")],
            initial_option=next((o for o in options if o.value == sel.integration), None),
        ),
    )


def _states_input(sel: BulkSelection) -> InputBlock:
    """Narrow to postings in the chosen states."""
    options = [_option(s.value.replace("_", " "), s.value) for s in STATE_CHOICES]
    return InputBlock(
        block_id="states",
        label="Postings that are",
        dispatch_action=True,
        element=StaticMultiSelectElement(
            action_id=_NARROWING,
            options=options,
            initial_options=[o for o in options if o.value in sel.states] or None,
        ),
    )


def _date_input(block_id: str, label: str, day: date | None) -> InputBlock:
    """One end of the documents' date range."""
    return InputBlock(
        block_id=block_id,
        label=label,
        optional=True,
        dispatch_action=True,
        element=DatePickerElement(action_id=_NARROWING, initial_date=day.isoformat() if day else None),
    )


def _group_input(sel: BulkSelection, groups: Sequence[Any]) -> InputBlock | None:
    """Narrow to one error group; left out when there are no open groups."""
    options = [_option(f"{g.group_id}: {g.title}"[:75], str(g.group_id)) for g in groups[:100]]
    if not options:
        return None
    return InputBlock(
        block_id="group",
        label="Error group",
        optional=True,
        dispatch_action=True,
        element=StaticSelectElement(
            action_id=_NARROWING,
            placeholder="Any error",
            options=options,
            initial_option=next((o for o in options if o.value == str(sel.error_group)), None),
        ),
    )


def _documents_input(documents: Sequence[Any]) -> InputBlock | None:
    """Pick single documents among the first ones shown; left out when none match."""
    # what the messages show (supplier · number · amount), not "bill B-1005"
    options = [_option(summary(d)[:75], str(d.id)) for d in documents[:SHOWN_DOCUMENTS]]
    if not options:
        return None
    return InputBlock(
        block_id="documents",
        label=f"Only these (first {len(options)} shown)",
        optional=True,
        element=StaticMultiSelectElement(action_id="documents", placeholder="All of them", options=options),
    )


def _confirm_input(count: int) -> InputBlock:
    """The tick that says the person means it."""
    return InputBlock(
        block_id="confirm",
        label="Confirm",
        element=CheckboxesElement(
            action_id="confirm", options=[_option(f"Resync these {count:,} documents", "yes")]
        ),
    )


def _progress_note() -> ContextBlock:
    """Where the person will see how it goes."""
    return ContextBlock(
        elements=[MarkdownTextObject(text="Progress is shown in the channel as the postings are queued.")]
    )
