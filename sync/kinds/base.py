"""What every document kind is made of: shared field types and the kind's parts.

A document kind (``sync/kinds/bill.py``, ``payroll.py``) is the only reader of its
data: its validated shape, the postings it needs, the ledger request of each, why a
posting is not needed, and what a person sees. :class:`DocumentKind` names those
parts; the registry in ``sync/kinds/__init__.py`` lists the kinds the engine uses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from connectors.base import PostingRequest
from sync.config import IntegrationConfig
from sync.planner import PlannedPosting
from sync.vouchers import MappingLookup

CENTS = Decimal("0.01")


def _cents(value: Decimal) -> Decimal:
    # "1250" and "1250.00" are the same amount: store and hash one spelling.
    return value.quantize(CENTS)


Money = Annotated[
    Decimal, Field(max_digits=18, decimal_places=2, allow_inf_nan=False), AfterValidator(_cents)
]
PositiveMoney = Annotated[
    Decimal, Field(gt=0, max_digits=18, decimal_places=2, allow_inf_nan=False), AfterValidator(_cents)
]
NonNegativeMoney = Annotated[
    Decimal, Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False), AfterValidator(_cents)
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Text = Annotated[str, Field(max_length=250)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Period = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


class Shape(BaseModel):
    """A document's validated data: unknown fields refused, text stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def number_text(value: Any) -> Any:
    """Supplier, run and relation numbers arrive as numbers or strings; we keep text."""
    if isinstance(value, bool):
        return value
    return str(value) if isinstance(value, int) else value


def money(amount: Any, currency: Any) -> str | None:
    """``1,250.00 DKK``; ``None`` when there is no amount."""
    if amount is None:
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return f"{amount} {currency or ''}".strip()
    return f"{value:,.2f} {currency or ''}".strip()


#: ``(cfg, lookup, data, posting_kind, period, key)`` -> the request one posting sends
RequestBuilder = Callable[[IntegrationConfig, MappingLookup, Any, str, str | None, str], PostingRequest]


@dataclass(frozen=True)
class DocumentKind:
    """The parts of one document kind; each reads the kind's data, nothing else does.

    The shown parts (``title``, ``fields``, ``summary``, ``has_payment``) read the
    stored data as a mapping, forgiving missing fields, so a message about a document
    never fails to render.
    """

    name: str
    shape: type[Shape]
    #: ``(data, rules, history=...)`` -> the postings the document needs
    plan: Callable[..., list[PlannedPosting]]
    request: RequestBuilder
    #: ``(data, posting_kind)`` -> why a person's resync finds no such posting, or ``None``
    why_no_posting: Callable[[Any, str], str | None]
    #: ``posting_kind`` -> why the document no longer needs a posting it had, or ``None``
    no_longer_needed: Callable[[str], str | None]
    #: ``(data, external_id)`` -> ``bill INV-1 from Kontorland A/S``
    title: Callable[[Mapping[str, Any], str], str]
    #: ``(data, external_id, key)`` -> label/value pairs a message shows
    fields: Callable[[Mapping[str, Any], str, str], list[tuple[str, str]]]
    #: ``(data, external_id)`` -> one line in a list of documents
    summary: Callable[[Mapping[str, Any], str], str]
    #: ``data`` -> whether the document has a payment (a payment posting may be resynced)
    has_payment: Callable[[Mapping[str, Any]], bool]
    #: ``(data, posting_kind, period)`` -> label/value pairs about one posting (a journal's totals)
    posting_fields: Callable[[Mapping[str, Any], str, str | None], list[tuple[str, str]]] = (
        lambda data, posting_kind, period: []
    )
