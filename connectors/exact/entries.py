"""Exact Online entry bodies: purchase entries (bills) and general journal entries (payroll).

The idempotency key leads the entry ``Description`` (purchase entries) or every
line's ``Description`` (general journal entries, whose header has no text).
Entry ``Status``: 20 open (a draft); 50 processed and anything else is booked.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from connectors.base import NeedsPersonError, PostingRequest, PostingResult, RecordStatus

# Not published as such; the fake server enforces the same so truncation is tested.
DESCRIPTION_MAX = 60
YOUR_REF_MAX = 30
STATUS_OPEN = 20
#: the entity an entry of each posting kind is
ENTRIES = {"invoice": "purchaseentry/PurchaseEntries", "journal": "generaljournalentry/GeneralJournalEntries"}


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def keyed(key: str, text: str) -> str:
    """The key first, so cutting to the field's length never loses it."""
    return f"{key} {text}".strip()[:DESCRIPTION_MAX]


def entry_status(entry: Mapping[str, Any]) -> RecordStatus:
    """Open (20) is a draft; processed (50) or anything else is booked."""
    try:
        status = int(entry.get("Status") or 0)
    except (TypeError, ValueError):
        status = 0
    return RecordStatus.DRAFT if status == STATUS_OPEN else RecordStatus.BOOKED


def entry_result(entry: Mapping[str, Any], what: str) -> PostingResult:
    """An entry as the engine records it: its ``EntryID``, status and number."""
    number = entry.get("EntryNumber")
    return PostingResult(
        str(entry["EntryID"]), entry_status(entry), detail=f"{what} {number}" if number else what
    )


def check_purchase(request: PostingRequest) -> tuple[str, str]:
    """The account and supplier number of a bill's purchase entry, or the refusal."""
    if request.amount <= 0:
        raise NeedsPersonError("Amount must be greater than zero.", code="invalid_amount", field="amount")
    if not request.account or request.supplier is None:
        raise NeedsPersonError(
            "A purchase entry needs an account and a supplier.", code="incomplete", field="account"
        )
    return request.account, request.supplier.number


def purchase_body(request: PostingRequest, *, journal: str, gl_account: str, supplier: str) -> dict[str, Any]:
    """The purchase entry, with the account and supplier already resolved to Exact's GUIDs."""
    line: dict[str, Any] = {
        "GLAccount": gl_account,
        "AmountFC": request.amount,
        "Description": request.text[:DESCRIPTION_MAX],
    }
    if request.department:
        line["CostCenter"] = request.department
    body: dict[str, Any] = {
        "Journal": journal,
        "Supplier": supplier,
        "EntryDate": request.date.isoformat(),
        "Currency": request.currency,
        "Description": keyed(request.idempotency_key, request.text),
        "YourRef": request.reference[:YOUR_REF_MAX],
        "PurchaseEntryLines": [line],
    }
    if request.due_date:
        body["DueDate"] = request.due_date.isoformat()
    return body


def check_journal(request: PostingRequest) -> None:
    """Refuse a journal with no lines or lines that do not balance."""
    if not request.lines:
        raise NeedsPersonError("The journal has no lines.", code="empty_journal")
    total = sum((line.amount for line in request.lines), Decimal(0))
    if total != 0:
        raise NeedsPersonError(f"The journal does not balance: its lines sum to {total}.", code="unbalanced")


def journal_body(request: PostingRequest, *, journal: str, gl_accounts: Mapping[str, str]) -> dict[str, Any]:
    """The general journal entry; ``gl_accounts`` maps each line's account code to its GUID."""
    lines = []
    for line in request.lines:
        row: dict[str, Any] = {
            "GLAccount": gl_accounts[line.account],
            "AmountFC": line.amount,
            "Date": request.date.isoformat(),
            "Description": keyed(request.idempotency_key, line.text or request.text),
        }
        if line.dimensions.get("cost_center"):
            row["CostCenter"] = line.dimensions["cost_center"]
        if line.dimensions.get("cost_unit"):
            row["CostUnit"] = line.dimensions["cost_unit"]
        lines.append(row)
    body: dict[str, Any] = {"JournalCode": journal, "GeneralJournalEntryLines": lines}
    # Book in the period the lines concern (a calendar financial year is assumed).
    year, month = (request.period or request.date.strftime("%Y-%m")).split("-")
    body["FinancialYear"], body["FinancialPeriod"] = int(year), int(month)
    return body
