"""The contract between the sync engine and an accounting system.

A connector turns one :class:`PostingRequest` into a record in the ledger and
answers questions about records it made. It raises the typed errors below so
the engine can tell "try again later" from "a person must fix this" from
"booked, never touch again" from "we do not know whether the write happened".
Connectors never log or repeat credentials in messages.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class RecordStatus(StrEnum):
    """What the ledger says about a record we made earlier."""

    DRAFT = "draft"  # still editable: update it
    BOOKED = "booked"  # immutable: never change it, never create it again
    MISSING = "missing"  # gone (or never made): create it


@dataclass(frozen=True)
class Party:
    """A supplier or customer as the ledger knows it."""

    number: str
    name: str = ""


@dataclass(frozen=True)
class JournalLine:
    """One line of a journal: debit positive, credit negative."""

    account: str
    amount: Decimal
    text: str = ""
    dimensions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Address:
    line1: str = ""
    postal_code: str = ""
    city: str = ""
    country: str = ""


@dataclass(frozen=True)
class RelationRecord:
    """A debtor or creditor."""

    type: str  # debtor | creditor
    number: str
    name: str
    vat_number: str = ""
    email: str = ""
    address: Address = field(default_factory=Address)


@dataclass(frozen=True)
class PostingRequest:
    """Everything a connector needs to write one posting, already mapped.

    ``account`` is the contra account the engine resolved from the integration's
    mappings: the expense account of a bill's category for an invoice posting,
    the bank account (``payment_account``) for a payment posting.
    ``idempotency_key`` must be stored in a field the ledger keeps and can be
    searched by, so :meth:`Connector.find` can recognise the record after an
    unknown outcome.
    """

    kind: str
    idempotency_key: str
    company_key: str
    date: dt.date  # ``dt.`` because the field's name shadows the type for the lines below
    currency: str = "DKK"
    amount: Decimal = Decimal("0")
    text: str = ""
    reference: str = ""  # the document's own number (supplier invoice number, order number)
    supplier: Party | None = None
    customer: Party | None = None
    due_date: dt.date | None = None
    account: str | None = None
    department: str | None = None
    fee_account: str | None = None
    fee: Decimal | None = None
    period: str | None = None  # "YYYY-MM" for journals booked in a given period
    lines: tuple[JournalLine, ...] = ()
    relation: RelationRecord | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostingResult:
    """What the ledger made or found."""

    external_ref: str
    status: RecordStatus = RecordStatus.DRAFT
    detail: str = ""


class ConnectorError(Exception):
    """Base of every error a connector raises.

    ``message`` is the ledger's own text (or ours, in a finance person's words),
    ``code`` a short stable code used for grouping, ``field`` the offending field.

    ``outcome_known`` says whether the failed call provably wrote nothing: the
    ledger gave a definite refusal, or the request never left. Only then may the
    engine write again without looking first; anything else raised during a create
    or update is an unknown outcome (``sync.errors.classify`` applies the rule).
    """

    default_code = "error"
    #: nothing can have been written by the call that raised this
    outcome_known = False

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.field = field


class TransientError(ConnectorError):
    """Retry later. During a write it is an unknown outcome unless ``nothing_written``.

    Pass ``nothing_written=True`` only when the request provably never left
    (connection refused, DNS, connect or pool timeout, a sign-in that failed before
    the write) or the ledger refused it definitely (a version conflict): then the
    next try may write again without looking the record up first.
    """

    default_code = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
        nothing_written: bool = False,
    ):
        super().__init__(message, code=code, field=field)
        self.retry_after = retry_after
        self.outcome_known = nothing_written


class RateLimitedError(TransientError):
    """429 or an exhausted allowance; ``retry_after`` seconds when the ledger says."""

    default_code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ):
        # A refusal to do anything yet: nothing was written.
        super().__init__(message, code=code, field=field, retry_after=retry_after, nothing_written=True)


class NeedsPersonError(ConnectorError):
    """The ledger refused the content (validation, unknown account, closed period).

    A refusal that explains itself: nothing was written.
    """

    default_code = "rejected"
    outcome_known = True


class AuthenticationError(NeedsPersonError):
    """Credentials were refused; a person must renew them."""

    default_code = "unauthorized"


class RecordExistsError(NeedsPersonError):
    """An insert was refused because the record exists (e.g. debtor number taken)."""

    default_code = "exists"


class BookedError(ConnectorError):
    """The record is booked: it can never be changed and must not be created again."""

    default_code = "booked"
    outcome_known = True


class UnknownOutcomeError(ConnectorError):
    """The write was sent but no answer came back: it may or may not exist now."""

    default_code = "timeout"


class UnsupportedPostingError(NeedsPersonError):
    """This ledger cannot take this kind of posting."""

    default_code = "unsupported"


@runtime_checkable
class Connector(Protocol):
    """One administration in one accounting system."""

    kind: str

    def supports(self, posting_kind: str) -> bool:
        """Whether this connector can write postings of this kind."""
        ...

    async def create(self, request: PostingRequest) -> PostingResult:
        """Write a new record; the ledger assigns its number where it can."""
        ...

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        """Change a draft record; raise :class:`BookedError` when it is booked."""
        ...

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The record carrying ``request.idempotency_key``, or ``None``."""
        ...

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        """Draft, booked or missing."""
        ...

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        """Remove a draft record the document no longer needs; raise :class:`BookedError`
        when it is booked. Deleting a record that is already gone is not an error."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class TokenStore(Protocol):
    """Where a connector keeps a secret that changes while it runs (a rotated refresh token).

    The runtime gives each connector one backed by the database (encrypted), so a
    restart never loses access. ``set`` must be durable when it returns.
    """

    async def get(self, name: str) -> str | None: ...

    async def set(self, name: str, value: str, detail: dict[str, Any] | None = None) -> None: ...


# -- wire format shared by the HTTP connectors -------------------------------------------------
def encode_json(body: Any) -> bytes:
    """JSON with every ``Decimal`` written as a JSON number, digit for digit (never a float).

    Decimals are swapped for a quoted token carrying an unguessable nonce, which is
    unquoted after ``json.dumps``; text from documents can never forge the token.
    """
    nonce = secrets.token_hex(8)

    def mark(value: Any) -> Any:
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError("an amount must be a finite number")
            return f"{nonce}:{value:f}"
        if isinstance(value, Mapping):
            return {key: mark(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [mark(item) for item in value]
        return value

    text = json.dumps(mark(body), ensure_ascii=False, separators=(",", ":"))
    return re.sub(rf'"{nonce}:(-?[0-9]+(?:\.[0-9]+)?)"', r"\1", text).encode()


def decode_json(raw: bytes | str) -> Any:
    """Parse an answer with amounts as ``Decimal``."""
    return json.loads(raw, parse_float=Decimal) if raw else None


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number (rounded up to whole seconds) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        seconds = None
    if seconds is not None:
        if not seconds.is_finite() or seconds < 0:
            return None
        return int(seconds.to_integral_value(rounding=ROUND_CEILING))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
