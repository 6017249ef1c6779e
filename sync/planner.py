"""Pure: a document's state -> the postings it needs.

No I/O. Each planned posting carries the hash of exactly the fields the ledger
record is made of, so a change to anything else (say, a note the source keeps)
does not send an update, and a change to, e.g., a bill's amount, category,
department or due date does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from storage.states import PostingKind
from sync.documents import BillData, PayrollRunData


@dataclass(frozen=True)
class Eligibility:
    """Whether an integration sends on its own, and from which date."""

    auto_transfer: bool = True
    history_start: date | None = None
    ready_statuses: tuple[str, ...] = ("paid", "completed")


@dataclass(frozen=True)
class PlannedPosting:
    """A posting the document needs, with the hash of what it should say."""

    kind: str
    desired_hash: str
    #: ``None`` when it may be sent now, else why it waits (shown to people)
    wait_reason: str | None = None
    #: ``journal`` postings: the period they book in
    period: str | None = None

    @property
    def slot(self) -> str:
        """The posting's key within its document (kind, plus period for journals)."""
        return f"{self.kind}:{self.period}" if self.period else self.kind


def content_hash(fields: dict[str, Any]) -> str:
    """A stable hash of the fields a ledger record is made of."""
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def wait_reason(rules: Eligibility, doc_date: date | None, *, history: bool = False) -> str | None:
    """Why a document's postings may not be sent on their own yet."""
    if rules.history_start and doc_date and doc_date < rules.history_start and not history:
        return f"dated before the history start {rules.history_start.isoformat()}"
    if not rules.auto_transfer:
        return "automatic transfer is off for this integration"
    return None


def plan_bill(bill: BillData, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
    """Approved -> invoice posting; paid -> payment posting as well."""
    if not bill.approved:
        return []
    reason = wait_reason(rules, bill.date, history=history)
    invoice = content_hash(
        {
            "supplier": bill.supplier.number,
            "invoice_number": bill.invoice_number,
            "amount": str(bill.amount),
            "currency": bill.currency,
            "date": bill.date,
            "due_date": bill.due_date,
            "category": bill.category,
            "department": bill.department,
            "text": bill.text,
        }
    )
    planned = [PlannedPosting(PostingKind.INVOICE, invoice, reason)]
    if bill.paid is not None:
        payment = content_hash(
            {
                "supplier": bill.supplier.number,
                "invoice_number": bill.invoice_number,
                "amount": str(bill.paid.amount),
                "currency": bill.currency,
                "date": bill.paid.date,
            }
        )
        planned.append(PlannedPosting(PostingKind.PAYMENT, payment, reason))
    return planned


def plan_payroll(run: PayrollRunData, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
    """One journal per period the run's lines touch: corrections book where they belong."""
    reason = wait_reason(rules, run.date, history=history)
    periods: dict[str, list[Any]] = {}
    for line in run.lines:
        periods.setdefault(line.period, []).append(line.model_dump(mode="json"))
    return [
        PlannedPosting(
            PostingKind.JOURNAL, content_hash({"date": run.date, "lines": lines}), reason, period=period
        )
        for period, lines in sorted(periods.items())
    ]


def plan(kind: str, data: Any, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
    """The postings a document of ``kind`` needs."""
    if kind == "bill":
        return plan_bill(data, rules, history=history)
    if kind == "payroll_run":
        return plan_payroll(data, rules, history=history)
    raise UnsupportedDocument(kind)


class UnsupportedDocument(ValueError):
    """A document kind this version does not turn into postings yet."""

    def __init__(self, kind: str):
        super().__init__(f"documents of kind '{kind}' are not turned into postings by this version")
        self.kind = kind


SUPPORTED_KINDS = ("bill", "payroll_run")
