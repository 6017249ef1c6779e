"""e-conomic's voucher bodies: entry texts carrying the idempotency key, references, paths.

See :mod:`connectors.economic.client` for the sign of ``amount`` and where the key is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import NeedsPersonError, PostingRequest

TEXT_MAX = 250  # entry text, per the docs
ENTRY_TYPES = (
    "supplierInvoices",
    "supplierPayments",
    "financeVouchers",
    "customerPayments",
    "manualCustomerInvoices",
)
# e-conomic's own substitutions for characters in a resource path (docs: "Custom resource
# self-link encoding"); "_" goes first so the replacements are not themselves replaced.
_PATH_CODES = (("_", "_8_"), ("/", "_6_"), (" ", "_9_"), (":", "_4_"), ("&", "_5_"))


def key_marker(key: str) -> str:
    """How the idempotency key appears in an entry text."""
    return f"[{key}]"


def entry_text(text: str, key: str) -> str:
    """``"<text> [KEY]"`` cut to the ledger's 250 characters; the key always survives."""
    marker = key_marker(key)
    room = TEXT_MAX - len(marker) - 1
    text = " ".join(text.split())
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return f"{text} {marker}" if text else marker


def path_segment(value: str) -> str:
    """A value as e-conomic spells it inside a resource path."""
    for char, code in _PATH_CODES:
        value = value.replace(char, code)
    return value


def filter_value(value: str) -> str:
    """Escape a value for ``?filter=`` (docs: "Escaping special characters")."""
    value = value.replace("$", "$$")
    for char in "()*,[]":
        value = value.replace(char, "$" + char)
    return value


def split_ref(external_ref: str) -> tuple[str, int]:
    """``"2026-50001"`` -> ``("2026", 50001)``."""
    year, _, number = external_ref.rpartition("-")
    if not year or not number.isdigit():
        raise NeedsPersonError(
            f"'{external_ref}' is not an e-conomic voucher reference (expected YEAR-NUMBER).",
            code="bad_reference",
        )
    return year, int(number)


def entries_of(voucher: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every entry of a voucher, whatever its type."""
    groups = voucher.get("entries") or {}
    return [entry for kind in ENTRY_TYPES for entry in groups.get(kind) or []]


def whole_number(value: str | None, what: str, field: str) -> int:
    """``value`` as the whole number e-conomic needs, or a refusal naming ``what``."""
    if value is None or not str(value).strip().isdigit():
        raise NeedsPersonError(
            f"The {what} '{value}' is not a number; e-conomic needs a whole number here.",
            code=f"bad_{field}",
            field=field,
        )
    return int(str(value).strip())


def voucher_body(
    request: PostingRequest,
    *,
    journal: int,
    payment_account: str | None,
    voucher_number: int | None = None,
) -> dict[str, Any]:
    """The journal voucher of an invoice or payment posting (``voucher_number``: replace that one)."""
    if request.supplier is None:
        raise NeedsPersonError(
            "The posting has no supplier; e-conomic needs a supplier number.",
            code="no_supplier",
            field="supplier",
        )
    account = request.account or (payment_account if request.kind == "payment" else None)
    entry: dict[str, Any] = {
        "supplier": {"supplierNumber": whole_number(request.supplier.number, "supplier number", "supplier")},
        # See the client module docstring: an invoice credits the supplier, a payment debits it.
        "amount": -request.amount if request.kind == "invoice" else request.amount,
        "currency": {"code": request.currency},
        "date": request.date.isoformat(),
        "text": entry_text(request.text, request.idempotency_key),
        "contraAccount": {"accountNumber": whole_number(account, "account", "account")},
    }
    if request.reference:
        # Not cut to 30: a shortened invoice number would match the wrong invoice; the
        # ledger's refusal names the field so a person can decide.
        entry["supplierInvoiceNumber"] = request.reference
    if request.kind == "invoice" and request.due_date is not None:
        entry["dueDate"] = request.due_date.isoformat()
    if request.department:
        entry["departmentalDistribution"] = {
            "departmentalDistributionNumber": whole_number(request.department, "department", "department")
        }
    if voucher_number is not None:
        entry["voucher"] = {"voucherNumber": voucher_number}
    kind = "supplierInvoices" if request.kind == "invoice" else "supplierPayments"
    return {
        "accountingYear": {"year": str(request.date.year)},
        "journal": {"journalNumber": journal},
        "entries": {kind: [entry]},
    }
