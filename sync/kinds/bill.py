"""A supplier's bill: approved -> an invoice posting; paid -> a payment posting as well.

The only reader of a bill's data: its validated shape, the postings it needs, the
ledger request of each, why one is not needed, and what a person sees of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, StrictBool, field_validator

from connectors.base import Party, PostingRequest
from storage.states import PostingKind
from sync.config import IntegrationConfig
from sync.errors import NotSendable
from sync.kinds.base import Currency, DocumentKind, Name, PositiveMoney, Shape, Text, money, number_text
from sync.planner import Eligibility, PlannedPosting, content_hash, wait_reason
from sync.vouchers import MappingLookup, mapped


class Supplier(Shape):
    number: Annotated[str, Field(min_length=1, max_length=40)]
    name: Name

    _n = field_validator("number", mode="before")(number_text)


class Paid(Shape):
    date: dt.date
    amount: PositiveMoney


class BillData(Shape):
    supplier: Supplier
    invoice_number: Annotated[str, Field(min_length=1, max_length=64)]
    amount: PositiveMoney
    currency: Currency
    date: dt.date  # ``dt.`` because the field's name shadows the type for the lines below
    due_date: dt.date
    category: Name
    department: Name | None = None
    text: Text | None = None
    approved: StrictBool
    paid: Paid | None = None


# -- the postings ---------------------------------------------------------------------------


def plan(bill: BillData, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
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
        # a payment without its invoice in the ledger would pay a bill the books do not have
        planned.append(PlannedPosting(PostingKind.PAYMENT, payment, reason, depends_on=PostingKind.INVOICE))
    return planned


def request(
    cfg: IntegrationConfig,
    lookup: MappingLookup,
    bill: BillData,
    posting_kind: str,
    period: str | None,
    key: str,
) -> PostingRequest:
    """The ledger request of the bill's invoice or payment posting."""
    supplier = Party(number=bill.supplier.number, name=bill.supplier.name)
    if posting_kind == PostingKind.INVOICE:
        return PostingRequest(
            kind=PostingKind.INVOICE,
            idempotency_key=key,
            company_key=cfg.name,
            date=bill.date,
            due_date=bill.due_date,
            currency=bill.currency,
            amount=bill.amount,
            text=bill.text or f"{bill.supplier.name} invoice {bill.invoice_number}",
            reference=bill.invoice_number,
            supplier=supplier,
            account=mapped(lookup, cfg, "category", bill.category),
            department=(mapped(lookup, cfg, "department", bill.department) if bill.department else None),
        )
    if posting_kind == PostingKind.PAYMENT:
        return _payment_request(cfg, bill, supplier, key)
    raise NotSendable(f"A bill has no {posting_kind} posting.", code="no_such_posting")


def _payment_request(cfg: IntegrationConfig, bill: BillData, supplier: Party, key: str) -> PostingRequest:
    if bill.paid is None:
        raise NotSendable("The bill is not paid, so it has no payment posting.", "not_paid")
    if cfg.payment_account is None:
        raise NotSendable(
            f"No payment_account is configured for {cfg.name}; set it in ledgerops.toml.",
            "no_payment_account",
        )
    return PostingRequest(
        kind=PostingKind.PAYMENT,
        idempotency_key=key,
        company_key=cfg.name,
        date=bill.paid.date,
        currency=bill.currency,
        amount=bill.paid.amount,
        text=f"Payment {bill.supplier.name} invoice {bill.invoice_number}",
        reference=bill.invoice_number,
        supplier=supplier,
        account=str(cfg.payment_account),
    )


def why_no_posting(bill: BillData, posting_kind: str) -> str | None:
    """Why a person's resync of ``posting_kind`` finds nothing to queue."""
    if posting_kind == PostingKind.PAYMENT and bill.paid is None:
        return "The bill is not paid, so it has no payment posting to sync. Mark it paid in the source first."
    if posting_kind == PostingKind.INVOICE and not bill.approved:
        return "The bill is not approved, so it has no invoice posting yet."
    return None


_NO_LONGER: dict[str, str] = {
    PostingKind.PAYMENT: "the bill is no longer paid",
    PostingKind.INVOICE: "the bill is no longer approved",
}


def no_longer_needed(posting_kind: str) -> str | None:
    """Why a bill no longer needs a posting it had."""
    return _NO_LONGER.get(posting_kind)


# -- what a person sees ---------------------------------------------------------------------


def _supplier_name(data: Mapping[str, Any]) -> str | None:
    return (data.get("supplier") or {}).get("name")


def title(data: Mapping[str, Any], external_id: str) -> str:
    """``bill INV-1 from Kontorland A/S``."""
    supplier = _supplier_name(data) or "an unknown supplier"
    return f"bill {data.get('invoice_number') or external_id} from {supplier}"


def fields(data: Mapping[str, Any], external_id: str, key: str) -> list[tuple[str, str]]:
    """Supplier, invoice number, amount and payment (raw text: the builder escapes)."""
    paid = data.get("paid")
    return [
        ("Supplier", str(_supplier_name(data) or "—")),
        ("Invoice number", str(data.get("invoice_number") or external_id)),
        ("Amount", money(data.get("amount"), data.get("currency")) or "—"),
        (
            "Paid",
            f"{paid.get('date')}, {money(paid.get('amount'), data.get('currency'))}"
            if isinstance(paid, dict)
            else "Not paid",
        ),
    ]


def summary(data: Mapping[str, Any], external_id: str) -> str:
    """``Kontorland A/S · INV-1 · 1,250.00 DKK``."""
    amount = money(data.get("amount"), data.get("currency")) or ""
    return f"{_supplier_name(data) or '?'} · {data.get('invoice_number') or external_id} · {amount}"


def has_payment(data: Mapping[str, Any]) -> bool:
    """Only a paid bill has a payment posting (the users' own rule)."""
    return bool(data.get("paid"))


KIND = DocumentKind(
    name="bill",
    shape=BillData,
    plan=plan,
    request=request,
    why_no_posting=why_no_posting,
    no_longer_needed=no_longer_needed,
    title=title,
    fields=fields,
    summary=summary,
    has_payment=has_payment,
)
