"""Block Kit snapshots of whose words a failure shows, and of a payroll journal's money.

Pure builders, no I/O: the reviewed shape of a journal that does not balance in a run
posted in part, a test company's refused journal, a give-up, a person's resync that
failed at once, and a missing mapping (ledgerops' reason, not the ledger's answer).
"""

from __future__ import annotations

from typing import Any

from bot.actions import ActionId
from bot.postings.facts import DocumentFacts, PostingFacts, PostingNotice
from bot.postings.messages import posting_message
from tests.test_slack_blocks import AT, a_bill, buttons, checked, snapshot


def a_run(company_is_test: bool = False, credit: str = "-51990.00") -> DocumentFacts:
    lines = [
        {
            "account": "4000",
            "amount": "52000.00",
            "period": "2026-11",
            "cost_center": "CPH",
            "cost_unit": "Sales",
        },
        {"account": "6900", "amount": credit, "period": "2026-11", "cost_center": "AAR"},
        {"account": "4000", "amount": "1200.00", "period": "2026-10"},
        {"account": "6900", "amount": "-1200.00", "period": "2026-10"},
    ]
    data = {"run": "2026-11", "date": "2026-11-25", "company_is_test": company_is_test, "lines": lines}
    return DocumentFacts(id=9, source="payroll", kind="payroll_run", external_id="RUN-2026-11", data=data)


def journal(doc: DocumentFacts, error: str, code: str, **siblings: str) -> PostingNotice:
    posting = PostingFacts(
        id=21,
        kind="journal",
        state="failed",
        integration="books-dk",
        attempts=1,
        period="2026-11",
        last_error=error,
        error_code=code,
    )
    return PostingNotice(document=doc, posting=posting, last_attempt_at=AT, sibling_states=siblings)


def bill_failure(error: str, code: str | None, **posting: Any) -> PostingNotice:
    values: dict[str, Any] = dict(
        id=12, kind="invoice", state="failed", integration="books-dk", attempts=1, last_error=error
    )
    values.update(posting, error_code=code)
    return PostingNotice(
        document=a_bill(),
        posting=PostingFacts(**values),
        last_attempt_at=AT,
        sibling_states={"invoice": "failed"},
    )


def test_unbalanced_journal_of_a_run_posted_in_part() -> None:
    error = "The journal does not balance: debits 52,000.00, credits 51,990.00, difference 10.00."
    n = journal(a_run(), error, "unbalanced", **{"journal:2026-10": "synced", "journal:2026-11": "failed"})
    body = checked(posting_message(n))
    shown = str(body.blocks)
    assert "*Difference*\\n10.00" in shown and "1 of 2 periods posted (2026-10); 2026-11 failed." in shown
    assert "*The ledger says:*" in shown
    assert buttons(body) == [ActionId.RESYNC_POSTING, ActionId.SHOW_LOG, ActionId.IGNORE]
    snapshot("payroll_unbalanced_partly_posted", body)


def test_test_companys_journal_is_refused_with_ignore_only() -> None:
    error = "Payroll run 2026-11 comes from a company marked as a test company; test payroll is not booked."
    body = checked(posting_message(journal(a_run(True, "-52000.00"), error, "test_company")))
    assert body.text.startswith("The journal (2026-11) of payroll run 2026-11 is refused")
    assert "The ledger says" not in str(body.blocks) and "*Why:*\\nledgerops: Payroll run" in str(body.blocks)
    assert buttons(body) == [ActionId.SHOW_LOG, ActionId.IGNORE]
    snapshot("payroll_refused_test_company", body)


def test_give_up_missing_mapping_and_a_failed_manual_resync() -> None:
    gave_up = bill_failure(
        "Could not connect to the ledger (connection refused).", "unreachable", attempts=5, gave_up=True
    )
    snapshot("posting_failed_gave_up", checked(posting_message(gave_up)))
    manual = bill_failure(
        "Could not connect to the ledger (connection refused).",
        "unreachable",
        attempts=6,
        gave_up=True,
        last_trigger="manual",
        last_actor="U0ALICE",
    )
    body = checked(posting_message(manual))
    assert "Gave up" not in str(body.blocks) and "stopped trying" not in str(body.blocks)
    snapshot("posting_failed_manual_resync", body)
    unmapped = bill_failure(
        "The category 'Travel' has no account mapping in books-dk. "
        'Map it (/ledger map category "Travel" <number>) and resync.',
        "unmapped_category",
    )
    body = checked(posting_message(unmapped))
    assert "The ledger says" not in str(body.blocks)
    snapshot("posting_failed_unmapped", body)
