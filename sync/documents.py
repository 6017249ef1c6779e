"""Document kinds and their validated shapes (CONTRACT.md "data by kind").

Amounts are ``Decimal``: the HTTP layer parses JSON numbers as ``Decimal`` and
strings are accepted too, so no amount ever passes through a float.
"""

from __future__ import annotations

import difflib
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from storage.db import MAX_BIGINT
from sync.intake import screen
from sync.kinds import KINDS
from sync.kinds.base import Currency, Money, Name, NonNegativeMoney, PositiveMoney, Shape, Text, number_text

DOCUMENT_KINDS = ("bill", "order", "refund", "payment", "payout", "payroll_run", "relation")
MAX_BATCH = 1000
#: versions are stored as a signed 64-bit integer
MAX_VERSION = MAX_BIGINT


class Customer(Shape):
    name: Name
    email: str | None = None


class OrderLine(Shape):
    text: Text
    quantity: Decimal = Field(gt=0)
    amount: Money
    vat: NonNegativeMoney = Decimal(0)


class OrderData(Shape):
    number: Annotated[str, Field(min_length=1, max_length=64)]
    status: Annotated[str, Field(min_length=1, max_length=40)]
    date: date
    currency: Currency
    total: Money
    vat: NonNegativeMoney
    payment_method: Name
    customer: Customer
    lines: list[OrderLine] = Field(min_length=1, max_length=500)

    _n = field_validator("number", mode="before")(number_text)


class RefundData(Shape):
    order: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    amount: PositiveMoney
    currency: Currency
    reason: Text | None = None

    _n = field_validator("order", mode="before")(number_text)


class PaymentData(Shape):
    order: Annotated[str, Field(min_length=1, max_length=64)]
    gateway: Name
    amount: PositiveMoney
    fee: NonNegativeMoney = Decimal(0)
    currency: Currency
    captured_at: datetime
    locked: StrictBool = False

    _n = field_validator("order", mode="before")(number_text)


class PayoutData(Shape):
    acquirer: Name
    date: date
    currency: Currency
    amount: Money
    fees: NonNegativeMoney = Decimal(0)
    payments: list[str] = Field(default_factory=list, max_length=10000)


class Address(Shape):
    line1: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""


class RelationData(Shape):
    type: Literal["debtor", "creditor"]
    name: Name
    vat_number: str | None = None
    email: str | None = None
    address: Address = Field(default_factory=Address)
    number: str | None = None

    _n = field_validator("number", mode="before")(number_text)


#: every kind's shape: the engine's kinds (``sync/kinds/``), then those not turned into postings yet
DATA_MODELS: dict[str, type[Shape]] = {
    **{name: kind.shape for name, kind in KINDS.items()},
    "order": OrderData,
    "refund": RefundData,
    "payment": PaymentData,
    "payout": PayoutData,
    "relation": RelationData,
}


#: the event's own text fields lose surrounding blanks; ``data``'s keys never do
Stripped = Annotated[str, StringConstraints(strip_whitespace=True)]


class Event(BaseModel):
    """One event as a source sends it.

    Whitespace is stripped from the values of ``source``, ``kind``, ``id`` and
    ``integration`` only: stripping ``data``'s keys would turn ``"amount "`` into a
    second ``amount`` that silently replaces the first.
    """

    model_config = ConfigDict(extra="forbid")

    source: Annotated[Stripped, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Stripped
    id: Annotated[Stripped, Field(min_length=1, max_length=128)]
    version: Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
    integration: Annotated[Stripped, Field(min_length=1, max_length=40)]
    data: dict[str, Any]

    @field_validator("id", mode="before")
    @classmethod
    def _id_text(cls, value: Any) -> Any:
        return number_text(value)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in DOCUMENT_KINDS:
            raise ValueError(f"unknown kind '{value}'; expected one of {', '.join(DOCUMENT_KINDS)}")
        return value


class ValidEvent(BaseModel):
    """An event whose data matched its kind."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    event: Event
    data: Any  # one of DATA_MODELS' instances

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event.source, self.event.kind, self.event.id)

    def stored_data(self) -> dict[str, Any]:
        """The data as stored: JSON types, amounts as decimal strings."""
        return self.data.model_dump(mode="json", exclude_none=False)


class FieldError(BaseModel):
    """One problem in a request, addressed by event index and dotted field path."""

    index: int | None
    field: str
    message: str


def _path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(event)"


def _model_at(annotation: Any, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that validates the object at ``loc`` under ``annotation``, if any."""
    for part in loc:
        if isinstance(part, int):
            annotation = _list_item(annotation)
        else:
            model = _model_of(annotation)
            if model is None or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
    return _model_of(annotation)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):  # Optional[Model], Annotated[Model, ...]
        if (model := _model_of(arg)) is not None:
            return model
    return None


def _list_item(annotation: Any) -> Any:
    if get_origin(annotation) is list:
        return get_args(annotation)[0]
    for arg in get_args(annotation):  # Optional[list[Line]]
        if get_origin(arg) is list:
            return get_args(arg)[0]
    return None


def _did_you_mean(key: str, names: list[str]) -> str | None:
    """The field a mistyped key most likely meant (blanks and case first, then spelling)."""
    squashed = "".join(key.split()).casefold()
    for name in names:
        if name.casefold() == squashed:
            return name
    close = difflib.get_close_matches(squashed, names, n=1, cutoff=0.75)
    return close[0] if close else None


def _message(err: ErrorDetails, model: type[BaseModel] | None = None) -> str:
    msg = str(err.get("msg", "invalid"))
    msg = re.sub(r"^Value error, ", "", msg)
    if err.get("type") == "decimal_max_places":
        msg += " (amounts have at most 2 decimals)"
    if err.get("type") == "less_than_equal" and tuple(err["loc"]) == ("version",):
        msg = f"must be at most {MAX_VERSION} (a 64-bit integer)"
    if err.get("type") == "extra_forbidden":
        *parent, key = err["loc"]
        inner = _model_at(model, tuple(parent)) if model is not None else None
        guess = _did_you_mean(str(key), list(inner.model_fields)) if inner is not None else None
        msg = f"unknown field; did you mean '{guess}'?" if guess else "unknown field"
    return msg


def validate_event(
    raw: Any, index: int | None, known_integrations: set[str]
) -> tuple[ValidEvent | None, list[FieldError]]:
    """Validate one raw event; return it, or the errors naming each bad field."""
    if not isinstance(raw, dict):
        return None, [FieldError(index=index, field="(event)", message="must be a JSON object")]
    if problems := screen(raw):
        return None, [FieldError(index=index, field=_path(loc), message=msg) for loc, msg in problems]
    try:
        event = Event.model_validate(raw)
    except ValidationError as exc:
        return None, [
            FieldError(index=index, field=_path(e["loc"]), message=_message(e, Event)) for e in exc.errors()
        ]
    errors: list[FieldError] = []
    if event.integration not in known_integrations:
        errors.append(
            FieldError(
                index=index,
                field="integration",
                message=f"unknown integration '{event.integration}'; configured: "
                + (", ".join(sorted(known_integrations)) or "none"),
            )
        )
    model = DATA_MODELS[event.kind]
    try:
        data = model.model_validate(event.data)
    except ValidationError as exc:
        errors.extend(
            FieldError(index=index, field=_path(("data", *e["loc"])), message=_message(e, model))
            for e in exc.errors()
        )
        return None, errors
    if errors:
        return None, errors
    return ValidEvent(event=event, data=data), []


def validate_batch(body: Any, known_integrations: set[str]) -> tuple[list[ValidEvent], list[FieldError]]:
    """Validate a whole request body (one event or ``{"events": [...]}``)."""
    if isinstance(body, dict) and "events" in body and set(body) == {"events"}:
        raw_events = body["events"]
        if not isinstance(raw_events, list):
            return [], [FieldError(index=None, field="events", message="must be a list")]
        if not raw_events:
            return [], [FieldError(index=None, field="events", message="must not be empty")]
        if len(raw_events) > MAX_BATCH:
            return [], [
                FieldError(
                    index=None,
                    field="events",
                    message=f"at most {MAX_BATCH} events per request, got {len(raw_events)}",
                )
            ]
        indexed: list[tuple[int | None, Any]] = list(enumerate(raw_events))
    else:
        indexed = [(None, body)]
    valid: list[ValidEvent] = []
    errors: list[FieldError] = []
    for index, raw in indexed:
        event, errs = validate_event(raw, index if index is not None else 0, known_integrations)
        errors.extend(errs)
        if event is not None:
            valid.append(event)
    return valid, errors


def document_date(kind: str, data: Any) -> date | None:
    """The date a document is dated, for history start and filters."""
    if kind == "payment":
        return data.captured_at.date()
    return getattr(data, "date", None)
