"""Procountor JOURNAL ledger receipts: the lines of each posting kind, the body, the status.

The idempotency key leads the receipt ``name`` (and is in ``accountantsNotes``);
see :mod:`connectors.procountor.client` for why bills are journals here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from connectors.base import (
    JournalLine,
    NeedsPersonError,
    PostingRequest,
    RecordStatus,
    UnsupportedPostingError,
)

SUPPORTED = frozenset({"invoice", "payment", "journal"})
# Not published; the fake server enforces the same limits so truncation is tested.
NAME_MAX = 100
DESCRIPTION_MAX = 255
# VAT fields as in Procountor's own help-centre journal sample for lines without VAT.
RECEIPT_VAT_TYPE = "PURCHASE"
RECEIPT_VAT_STATUS = 1
LINE_VAT_STATUS = 12
#: what a receipt's notes say once ledgerops withdraws it (a person's voiding says nothing)
WITHDRAWN_NOTE = "withdrawn by ledgerops: its document no longer needs it"


def receipt_lines(
    request: PostingRequest, *, creditor_account: str, company_currency: str
) -> list[JournalLine]:
    """The receipt's lines: a journal's own, or a bill's expense/creditor (payment: creditor/bank)."""
    if request.extra.get("company_is_test"):
        raise NeedsPersonError(
            "The company is marked as a test company; its postings are not booked.",
            code="test_company",
        )
    if request.kind not in SUPPORTED:
        raise UnsupportedPostingError(f"Procountor cannot take {request.kind} postings here.")
    if request.kind == "journal":
        if not request.lines:
            raise NeedsPersonError("The journal has no lines.", code="empty_journal")
        return list(request.lines)
    if request.amount <= 0:
        raise NeedsPersonError("Amount must be greater than zero.", code="invalid_amount", field="amount")
    if request.currency != company_currency:
        # A JOURNAL receipt is booked in the company currency only.
        raise UnsupportedPostingError(
            f"The bill is in {request.currency}; Procountor journal receipts are in {company_currency}.",
            code="currency",
            field="currency",
        )
    if not request.account:
        raise NeedsPersonError("No account was given for the posting.", code="no_account", field="account")
    party = request.supplier.name if request.supplier else ""
    party_text = f"{party} {request.reference}".strip() or request.text
    dims = {"department": request.department} if request.department else {}
    if request.kind == "invoice":
        return [
            JournalLine(request.account, request.amount, request.text, dims),
            JournalLine(creditor_account, -request.amount, party_text),
        ]
    return [  # payment: the creditor is settled from the bank account
        JournalLine(creditor_account, request.amount, party_text),
        JournalLine(request.account, -request.amount, request.text, dims),
    ]


def check_balanced(lines: Sequence[JournalLine]) -> None:
    """Refuse lines that do not sum to zero."""
    total = sum((line.amount for line in lines), Decimal(0))
    if total != 0:
        raise NeedsPersonError(f"The receipt does not balance: its lines sum to {total}.", code="unbalanced")


def receipt_body(
    request: PostingRequest, lines: Sequence[JournalLine], dimension_values: Sequence[list[dict[str, Any]]]
) -> dict[str, Any]:
    """The UNFINISHED JOURNAL receipt; ``dimension_values`` holds each line's dimension items."""
    transactions = [
        {
            "transactionType": "ENTRY",
            "account": str(line.account),
            "accountingValue": line.amount,
            "vatPercent": Decimal(0),
            "vatStatus": LINE_VAT_STATUS,
            "description": (line.text or request.text)[:DESCRIPTION_MAX],
            "dimensionItemValues": values,
        }
        for line, values in zip(lines, dimension_values, strict=True)
    ]
    key = request.idempotency_key
    return {
        "type": "JOURNAL",
        "status": "UNFINISHED",
        # The key leads the name so truncation never cuts it; find() reads it back.
        "name": f"{key} {request.text}".strip()[:NAME_MAX],
        "receiptDate": request.date.isoformat(),
        "vatType": RECEIPT_VAT_TYPE,
        "vatStatus": RECEIPT_VAT_STATUS,
        "accountantsNotes": f"ledgerops {key}",
        "transactions": transactions,
    }


def receipt_status(receipt: Mapping[str, Any]) -> RecordStatus:
    """UNFINISHED is a draft; one ledgerops withdrew is missing; anything else is booked."""
    if receipt.get("status") == "UNFINISHED":
        return RecordStatus.DRAFT
    if receipt.get("status") == "INVALIDATED" and withdrawn(receipt):
        return RecordStatus.MISSING
    return RecordStatus.BOOKED


def withdrawn(receipt: Mapping[str, Any]) -> bool:
    """Whether ledgerops itself invalidated the receipt (its notes say so)."""
    return WITHDRAWN_NOTE in str(receipt.get("accountantsNotes") or "")


def carries(receipt: Mapping[str, Any], key: str) -> bool:
    """Whether the receipt's name or notes carry the idempotency key."""
    name = str(receipt.get("name") or "")
    notes = str(receipt.get("accountantsNotes") or "")
    return name.startswith(key) or key in notes
