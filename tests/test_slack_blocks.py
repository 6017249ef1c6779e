"""Block Kit builders: checked with slack_sdk's block models and compared with snapshots.

Regenerate the snapshots after an intended change with
``LEDGEROPS_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/test_slack_blocks.py`` and
review the diff of ``tests/snapshots/``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.actions import BUTTON_VALUE, ActionId, LogPageRef, PostingRef, read_value
from bot.block_kit import MAX_BLOCKS, SECTION_TEXT, SlackBody, cut, escape
from bot.postings.facts import DocumentFacts, GroupMember, GroupNotice, LogEntry, PostingFacts, PostingNotice
from bot.postings.log_blocks import LOG_PAGE_SIZE, log_page, refusal, thread_reply
from bot.postings.messages import group_message, posting_message

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("LEDGEROPS_UPDATE_SNAPSHOTS") == "1"
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def checked(body: SlackBody) -> SlackBody:
    """Every message must parse with slack_sdk's models and serialise back unchanged."""
    parsed = Block.parse_all(body.blocks)
    assert [b.to_dict() for b in parsed] == body.blocks  # to_dict() validates the limits
    assert len(body.blocks) <= MAX_BLOCKS
    for block in body.blocks:
        for text in _texts(block):
            assert len(text) <= SECTION_TEXT
    return body


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["text"]] if isinstance(node.get("text"), str) else []
        return out + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def snapshot(name: str, body: SlackBody) -> None:
    path = SNAPSHOTS / f"{name}.json"
    got = {"text": body.text, "blocks": body.blocks}
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}; run with LEDGEROPS_UPDATE_SNAPSHOTS=1"
    assert json.loads(path.read_text(encoding="utf-8")) == got, f"{path.name} differs"


def buttons(body: SlackBody) -> list[str]:
    return [e["action_id"] for b in body.blocks if b["type"] == "actions" for e in b["elements"]]


def a_bill(paid: bool = False, supplier: str = "Kontorland A/S") -> DocumentFacts:
    data: dict[str, Any] = {
        "supplier": {"number": "3001", "name": supplier},
        "invoice_number": "INV-1042",
        "amount": "1250.00",
        "currency": "DKK",
        "date": "2026-11-02",
        "category": "Travel",
        "approved": True,
        "paid": {"date": "2026-11-20", "amount": "1250.00"} if paid else None,
    }
    return DocumentFacts(id=7, source="ap", kind="bill", external_id="B-1042", data=data)


def a_notice(
    state: str = "failed",
    *,
    paid: bool = False,
    supplier: str = "Kontorland A/S",
    error: str | None = "Account 2800 does not exist.",
    **posting: Any,
) -> PostingNotice:
    values: dict[str, Any] = dict(
        id=12, kind="invoice", state=state, integration="books-dk", attempts=1, last_error=error
    )
    values.update(posting)
    return PostingNotice(
        document=a_bill(paid, supplier),
        posting=PostingFacts(**values),
        last_attempt_at=AT,
        sibling_states={"invoice": state, **({"payment": "synced"} if paid else {})},
        fixed_by=posting.get("queued_actor") if state == "synced" else None,
    )


def test_failed_unpaid_bill_offers_invoice_resync_log_and_ignore() -> None:
    body = checked(posting_message(a_notice()))
    assert buttons(body) == [ActionId.RESYNC_INVOICE, ActionId.SHOW_LOG, ActionId.IGNORE]
    text = json.dumps(body.blocks)
    for fact in (
        "Kontorland A/S",
        "INV-1042",
        "1,250.00 DKK",
        "books-dk",
        "Account 2800 does not exist.",
        "attempts: 1",
        "Invoice posting",
    ):
        assert fact in text
    value = body.blocks[-1]["elements"][0]["value"]
    assert read_value(ActionId.RESYNC_INVOICE, value) == PostingRef(document=7, posting=12)
    snapshot("posting_failed_unpaid", body)


def test_failed_paid_bill_also_offers_payment_resync() -> None:
    body = checked(posting_message(a_notice(paid=True)))
    assert buttons(body) == [
        ActionId.RESYNC_INVOICE,
        ActionId.RESYNC_PAYMENT,
        ActionId.SHOW_LOG,
        ActionId.IGNORE,
    ]
    snapshot("posting_failed_paid", body)


def test_queued_after_a_click_names_who_asked_and_offers_no_second_resync() -> None:
    body = checked(posting_message(a_notice("pending", queued_actor="U0ALICE", queued_trigger="manual")))
    assert "Resync requested by <@U0ALICE>" in json.dumps(body.blocks)
    assert buttons(body) == [ActionId.SHOW_LOG]
    snapshot("posting_queued", body)


def test_synced_shows_voucher_and_who_fixed_it() -> None:
    body = checked(
        posting_message(
            a_notice("synced", error=None, external_ref="2026-50001", queued_actor="U0ALICE", attempts=2)
        )
    )
    text = json.dumps(body.blocks)
    assert "2026-50001" in text and "Fixed by <@U0ALICE>" in text
    assert buttons(body) == [ActionId.SHOW_LOG]
    snapshot("posting_synced", body)


def test_booked_change_shows_before_and_after_and_offers_mark_handled() -> None:
    change = (("Amount", "742.50", "842.50"), ("Account", "2800", "2850"))
    body = checked(
        posting_message(
            a_notice(
                "booked",
                paid=True,
                external_ref="2026-50001",
                error="Change not sent: voucher 2026-50001 is booked in the ledger (Amount 742.50 → 842.50; "
                "Account 2800 → 2850). Correct it in the ledger, then mark it handled.",
                unsent_change=change,
            )
        )
    )
    assert buttons(body) == [ActionId.MARK_HANDLED, ActionId.SHOW_LOG]
    text = json.dumps(body.blocks, ensure_ascii=False)
    assert (
        "Booked, change not sent" in text
        and "Amount 742.50 → 842.50" in text
        and "Account 2800 → 2850" in text
    )
    assert "The ledger says" not in text  # ledgerops' own reason, not the ledger's
    snapshot("posting_booked", body)
    handled = checked(
        posting_message(
            a_notice(
                "booked",
                paid=True,
                external_ref="2026-50001",
                error=None,
                unsent_change=change,
                handled_by="U0BOB",
                handled_at=AT,
            )
        )
    )
    assert buttons(handled) == [ActionId.SHOW_LOG]
    assert "Marked handled by <@U0BOB>" in json.dumps(handled.blocks)
    snapshot("posting_booked_handled", handled)


def test_a_failed_invoice_says_its_payment_waits_and_ignore_warns() -> None:
    n = a_notice(paid=True)
    waiting = PostingNotice(n.document, n.posting, last_attempt_at=AT, dependents=(("payment", "pending"),))
    body = checked(posting_message(waiting))
    assert "The payment posting waits for this one" in json.dumps(body.blocks)
    assert buttons(body) == [ActionId.RESYNC_INVOICE, ActionId.SHOW_LOG, ActionId.IGNORE]
    synced = PostingNotice(n.document, n.posting, last_attempt_at=AT, dependents=(("payment", "synced"),))
    ignore = checked(posting_message(synced)).blocks[-1]["elements"][-1]
    assert "already in the ledger; ignoring the invoice posting leaves it without its invoice" in json.dumps(
        ignore
    )
    snapshot("posting_failed_payment_waits", body)


def test_ignored_and_retrying_states() -> None:
    ignored = checked(posting_message(a_notice("ignored", queued_actor="U0BOB")))
    assert "Ignored by <@U0BOB>" in json.dumps(ignored.blocks)
    assert ActionId.IGNORE not in buttons(ignored)
    snapshot("posting_ignored", ignored)
    retrying = checked(
        posting_message(
            a_notice(
                "retrying",
                error="Could not connect to the ledger.",
                next_attempt_at=AT + timedelta(minutes=2),
            )
        )
    )
    assert ActionId.RESYNC_INVOICE in buttons(retrying)
    snapshot("posting_retrying", retrying)


def test_ledger_and_document_text_is_escaped_so_nobody_is_mentioned() -> None:
    body = checked(
        posting_message(a_notice(supplier="<!channel> & <@U0CEO>", error="Account <2800> & <!here> missing"))
    )
    raw = json.dumps({"text": body.text, "blocks": body.blocks})
    assert "<!channel>" not in raw and "<!here>" not in raw and "<@U0CEO>" not in raw
    assert "&lt;!channel&gt; &amp; &lt;@U0CEO&gt;" in raw
    assert "&lt;2800&gt; &amp; &lt;!here&gt;" in raw


def test_huge_ledger_text_is_cut_to_block_kit_limits() -> None:
    body = checked(posting_message(a_notice(error="<&>" * 5000, supplier="S" * 5000)))
    assert all(len(t) <= SECTION_TEXT for b in body.blocks for t in _texts(b))
    assert len(body.text) <= 3000


@given(st.text(alphabet="ab&<>\n", max_size=400), st.integers(min_value=2, max_value=300))
def test_cut_never_splits_an_entity(text: str, limit: int) -> None:
    out = cut(escape(text), limit)
    assert len(out) <= limit
    body = out.removesuffix("…")
    # every & left starts a whole entity
    for i, ch in enumerate(body):
        if ch == "&":
            assert body[i:].startswith(("&amp;", "&lt;", "&gt;"))


def test_button_values_are_small_json_and_junk_is_refused() -> None:
    value = PostingRef(document=1, posting=2).value()
    assert value == '{"document":1,"posting":2}' and len(value) < BUTTON_VALUE
    assert read_value(ActionId.RESYNC_INVOICE, value) == PostingRef(document=1, posting=2)
    for junk in (
        "",
        "[]",
        '{"document": "1", "posting": 2}',
        '{"document": -1, "posting": 2}',
        "{",
        '{"document": true, "posting": 2}',
        '{"document": 1}',
        '{"document": 1.0, "posting": 2}',
        f'{{"document": {2**63}, "posting": 2}}',
        None,
    ):
        with pytest.raises(ValueError):
            read_value(ActionId.RESYNC_INVOICE, junk)


def a_group(**counts: int) -> GroupNotice:
    members = tuple(GroupMember(a_bill(), "invoice") for _ in range(12))
    return GroupNotice(
        group_id=3,
        integration="books-dk",
        error_code="account_not_found",
        title="Account 2800 does not exist.",
        first_seen=AT,
        last_seen=AT + timedelta(minutes=5),
        counts=counts,
        sample=members,
        document_kinds=frozenset({"bill"}),
        requested_by=("U0ALICE",),
        fixed_by=("U0ALICE",),
    )


def test_group_message_counts_bills_and_offers_resync_all() -> None:
    body = checked(group_message(a_group(failed=37)))
    assert body.text.startswith("37 bills: Account 2800 does not exist.")
    assert buttons(body) == [ActionId.RESYNC_GROUP]
    assert "…and 27 more" in json.dumps(body.blocks, ensure_ascii=False)
    snapshot("group_failed", body)


def test_group_message_while_resyncing_and_when_resolved() -> None:
    queued = checked(group_message(a_group(pending=30, synced=7)))
    assert "Resync requested by <@U0ALICE>" in json.dumps(queued.blocks)
    assert buttons(queued) == []
    snapshot("group_queued", queued)
    resolved = checked(group_message(a_group(synced=37)))
    assert resolved.text.startswith("Resolved") and buttons(resolved) == []
    snapshot("group_resolved", resolved)


def entries(n: int) -> list[LogEntry]:
    out = []
    for i in range(n):
        failed = i % 2 == 0
        out.append(
            LogEntry(
                at=AT + timedelta(minutes=i),
                outcome="failed" if failed else "synced",
                posting="invoice",
                trigger="manual",
                actor="U0ALICE",
                operation="create",
                message="Account 2800 does not exist. " * 60 if failed else None,
                external_ref=None if failed else "2026-50001",
                order=i,
            )
        )
    out.append(
        LogEntry(
            at=AT,
            outcome="refused",
            actor="U0MALLORY",
            action="resync_invoice",
            message="not in allowed_users",
            order=99,
        )
    )
    return sorted(out, key=lambda e: e.at, reverse=True)


def test_log_page_stays_within_limits_and_pages_on() -> None:
    log = entries(40)
    body = checked(log_page(a_bill(), "books-dk", 1, log[:LOG_PAGE_SIZE], 0, has_more=True))
    assert buttons(body) == [ActionId.LOG_PAGE]
    value = body.blocks[-1]["elements"][0]["value"]
    assert read_value(ActionId.LOG_PAGE, value) == LogPageRef(document=7, integration=1, page=1)
    snapshot("log_page", body)
    last = checked(log_page(a_bill(), "books-dk", 1, log[30:], 2, has_more=False))
    assert buttons(last) == [] and "U0MALLORY" in json.dumps(last.blocks)


def test_thread_reply_and_refusal() -> None:
    reply = checked(thread_reply(entries(25)))
    assert "16 earlier attempts" in json.dumps(reply.blocks)
    snapshot("thread_reply", reply)
    no = checked(refusal("resync invoice postings", "<@U0ALICE> or someone in <!subteam^S0F>"))
    assert "not allowed to resync invoice postings" in no.text
    snapshot("refusal", no)


def test_action_ids_are_stable() -> None:
    assert [a.value for a in ActionId] == [
        "ledgerops.resync_invoice",
        "ledgerops.resync_payment",
        "ledgerops.resync_posting",
        "ledgerops.show_log",
        "ledgerops.log_page",
        "ledgerops.ignore",
        "ledgerops.resync_group",
        "ledgerops.mark_handled",
        "ledgerops.page",
        "ledgerops.pause",
        "ledgerops.resume",
        "ledgerops.confirm_history",
        "ledgerops.bulk_filter",
        "ledgerops.activity_page",
    ]


def test_group_still_failing_after_a_resync_says_who_tried_and_why() -> None:
    from dataclasses import replace

    from bot.postings.facts import GroupTry

    tried = replace(
        a_group(failed=2), last_try=GroupTry(AT, "U0ALICE", "failed", "Account 2800 does not exist.")
    )
    body = checked(group_message(tried))
    shown = json.dumps(body.blocks, ensure_ascii=False)
    assert "Tried again" in shown and "by <@U0ALICE>: failed again — Account 2800 does not exist." in shown
    snapshot("group_tried_again", body)
    moved = checked(group_message(a_group()))
    assert buttons(moved) == [] and "No longer failing this way" in json.dumps(moved.blocks)
    snapshot("group_moved_on", moved)


def test_a_posting_the_group_shows_points_there_without_buttons() -> None:
    from bot.postings.messages import shown_in_group

    body = checked(shown_in_group(a_notice()))
    assert buttons(body) == [ActionId.SHOW_LOG] and "fails like others" in body.text
    snapshot("posting_shown_in_group", body)


def test_bulk_progress_follows_outcomes() -> None:
    from bot.bulk.progress import BulkProgress, progress_message

    base = dict(actor="U0ALICE", total=2, documents=2, queued=2, refused=0)
    sending = checked(
        progress_message(BulkProgress(**base, finished=True, counts={"pending": 1, "synced": 1}))
    )
    assert sending.text == "Bulk resync: 1 of 2 postings sent, 1 waiting"
    snapshot("bulk_sending", sending)
    failed = BulkProgress(
        **base, finished=True, counts={"failed": 2}, reasons=(("Account 9999 does not exist.", 2),)
    )
    body = checked(progress_message(failed))
    assert body.text == "Bulk resync finished: 0 sent, 2 failed again: Account 9999 does not exist."
    assert "*2 failed again:* Account 9999 does not exist." in json.dumps(body.blocks, ensure_ascii=False)
    snapshot("bulk_failed_again", body)
    done = checked(progress_message(BulkProgress(**base, finished=True, counts={"synced": 2})))
    assert done.text == "Bulk resync done: 2 sent, 0 failed"
    snapshot("bulk_done", done)
