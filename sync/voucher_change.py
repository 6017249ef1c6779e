"""Pure: what a voucher is made of, and what a change to a booked one would have changed.

A synced posting keeps the fields of the request it sent (:func:`voucher_fields`).
When its voucher is booked and the document changes, :func:`unsent_change` compares
those with the request the new version would send, field by field, so a person reads
"Amount 742.50 -> 842.50" and "Account 2800 -> 2850" instead of guessing. Amounts
are kept as the exact Decimal text (never floats).
"""

from __future__ import annotations

from decimal import Decimal

from connectors.base import PostingRequest

#: text of a field the posting did not record when it synced (synced before fields were kept)
NOT_RECORDED = "not recorded"
#: the log's (and a message's) words for a change a booked voucher did not get
CHANGE_NOT_SENT = "change not sent: voucher booked"


def _amount(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


def voucher_fields(request: PostingRequest) -> dict[str, str]:
    """The fields the ledger record is made of, as exact text by the label a person reads."""
    fields = {
        "Amount": _amount(request.amount) if not request.lines else "",
        "Currency": request.currency,
        "Account": request.account or "",
        "Department": request.department or "",
        "Date": request.date.isoformat(),
        "Due date": request.due_date.isoformat() if request.due_date else "",
        "Text": request.text,
        "Reference": request.reference,
        "Supplier": request.supplier.number if request.supplier else "",
        "Customer": request.customer.number if request.customer else "",
        "Fee": _amount(request.fee),
        "Fee account": request.fee_account or "",
        "Period": request.period or "",
    }
    for n, line in enumerate(request.lines, 1):
        dims = ", ".join(f"{k} {v}" for k, v in sorted(line.dimensions.items()))
        fields[f"Line {n}"] = f"{line.account} {_amount(line.amount)}" + (f" ({dims})" if dims else "")
    return {label: value for label, value in fields.items() if value}


def unsent_change(before: dict[str, str] | None, after: dict[str, str]) -> list[list[str]]:
    """``[[field, before, after], ...]`` for each field that differs (``before`` may be unknown)."""
    if before is None:
        return [[label, NOT_RECORDED, value] for label, value in after.items()]
    labels = list(before) + [label for label in after if label not in before]
    return [
        [label, before.get(label) or "—", after.get(label) or "—"]
        for label in labels
        if before.get(label) != after.get(label)
    ]


def change_lines(change: list[list[str]]) -> list[str]:
    """``Amount 742.50 → 842.50`` per changed field (raw text: builders escape)."""
    return [f"{label} {old} → {new}" for label, old, new in change]


#: error code of a booked posting whose document changed after it was booked
BOOKED_CHANGE = "booked"


def booked_change_text(ref: str | None, change: list[list[str]]) -> str:
    """What the log and ``last_error`` say: which change the booked voucher did not get."""
    what = "; ".join(change_lines(change)) if change else "the document changed"
    return (
        f"Change not sent: voucher {ref or '?'} is booked in the ledger ({what}). "
        "Correct it in the ledger, then mark it handled."
    )
