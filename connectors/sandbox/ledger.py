"""An embedded ledger that behaves like a real one.

It has a chart of accounts, suppliers, a journal whose draft vouchers get their
numbers from the ledger, booking (which makes a voucher immutable), rejections
with error codes like a real ledger's, and switches that make it misbehave
(latency, outage, a timeout after the write) for tests and the demo.
Nothing is shared between ledgers; :class:`connectors.sandbox.books.SandboxBooks`
holds a process's ledgers by integration name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.base import (
    BookedError,
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RateLimitedError,
    RecordExistsError,
    RecordStatus,
    TransientError,
    UnknownOutcomeError,
    UnsupportedPostingError,
)

DEFAULT_ACCOUNTS: dict[str, str] = {
    "1010": "Sales of goods",
    "2750": "Freight",
    "2800": "Office supplies",
    "2820": "Software",
    "3600": "Rent",
    "4000": "Salaries",
    "4010": "Holiday pay",
    "4020": "Pension",
    "5820": "Bank",
    "5830": "MobilePay receivable",
    "5840": "Card receivable",
    "7200": "Payment fees",
    "6800": "Trade creditors",
    "6900": "Payroll liabilities",
}

SUPPORTED = frozenset({"invoice", "payment", "sale", "credit_note", "payout", "journal", "relation"})


@dataclass
class Voucher:
    """A voucher (or relation record) in the sandbox ledger."""

    ref: str
    kind: str
    reference_key: str
    date: date
    amount: Decimal
    text: str
    account: str | None
    supplier: str | None
    status: RecordStatus = RecordStatus.DRAFT
    revision: int = 1
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Switches:
    """Ways to make the ledger misbehave."""

    latency_ms: int = 0
    outage: bool = False
    #: the next N writes are applied and then time out (the answer is lost)
    timeouts_after_write: int = 0
    #: the next N calls answer 503 before doing anything
    fail_next: int = 0
    #: the next call is refused as rate limited, asking to wait this many seconds
    rate_limit_next: int = 0
    #: the next write (after ``lost_answer_skip`` more) is applied, then its answer is lost
    #: as a real ledger loses one: "500" / "502" / "504", "timeout" or "drop"
    lost_answer: str = ""
    lost_answer_skip: int = 0


class SandboxLedger:
    """The books of one administration, in memory."""

    def __init__(
        self,
        name: str,
        *,
        accounts: Mapping[str, str] | None = None,
        suppliers: Mapping[str, str] | None = None,
        closed_before: date | None = None,
        latency_ms: int = 0,
        first_voucher: int = 50001,
    ):
        self.name = name
        self.accounts = dict(accounts) if accounts else dict(DEFAULT_ACCOUNTS)
        # An empty supplier list means "any supplier": demo setups need not list them.
        self.suppliers = dict(suppliers or {})
        self.closed_before = closed_before
        self.switches = Switches(latency_ms=latency_ms)
        self.vouchers: dict[str, Voucher] = {}
        self.relations: dict[str, Voucher] = {}
        self._next_number = first_voucher
        self.writes = 0  # every create/update that changed the books
        self.answers_lost = 0  # answers the ``lost_answer`` switch lost
        #: told after every change of the books or a lasting switch (books kept on disk save)
        self.on_change: Callable[[], None] | None = None

    @property
    def next_number(self) -> int:
        """The number the next voucher gets."""
        return self._next_number

    @next_number.setter
    def next_number(self, value: int) -> None:
        self._next_number = value

    def changed(self) -> None:
        """The books or a lasting switch changed: tell whoever keeps them."""
        if self.on_change is not None:
            self.on_change()

    # -- what the demo panel and tests use -------------------------------------------
    def book(self, ref: str) -> None:
        """Book a draft voucher: from now on it is immutable."""
        self.vouchers[ref].status = RecordStatus.BOOKED
        self.changed()

    def records_with_key(self, key: str) -> list[Voucher]:
        """Every record carrying an idempotency key (a duplicate shows as two)."""
        pool = list(self.vouchers.values()) + list(self.relations.values())
        return [v for v in pool if v.reference_key == key]

    # -- behaviour ---------------------------------------------------------------------
    async def _enter(self) -> None:
        if self.switches.latency_ms:
            await asyncio.sleep(self.switches.latency_ms / 1000)
        if self.switches.rate_limit_next > 0:
            wait, self.switches.rate_limit_next = self.switches.rate_limit_next, 0
            raise RateLimitedError("Too many requests.", retry_after=wait)
        if self.switches.fail_next > 0:
            self.switches.fail_next -= 1
            # Turned away before anything happened, but a real ledger's 503 cannot say so:
            # not flagged, so during a write the engine looks the record up first.
            raise TransientError("Service unavailable (503). Try again later.", code="http_503")
        if self.switches.outage:
            raise TransientError(
                "Could not connect to the ledger (connection refused).",
                code="unreachable",
                nothing_written=True,  # the connection never opened
            )

    def _after_write(self) -> None:
        self.writes += 1
        self.changed()  # the write is applied, whatever answer is lost below
        if self.switches.timeouts_after_write > 0:
            self.switches.timeouts_after_write -= 1
            raise UnknownOutcomeError("The ledger did not answer within 30 s.", code="timeout")
        if self.switches.lost_answer and self.switches.lost_answer_skip > 0:
            self.switches.lost_answer_skip -= 1
        elif self.switches.lost_answer:
            mode, self.switches.lost_answer = self.switches.lost_answer, ""
            self.answers_lost += 1
            raise _lost_answer(mode)

    def _validate(self, req: PostingRequest) -> None:
        if req.kind not in SUPPORTED:
            raise UnsupportedPostingError(f"The sandbox ledger cannot take {req.kind} postings.")
        if self.closed_before and req.date < self.closed_before:
            raise NeedsPersonError(
                f"The period of {req.date.isoformat()} is closed for posting.",
                code="period_closed",
                field="date",
            )
        if req.kind == "relation":
            return
        for account in [req.account, *(line.account for line in req.lines)]:
            if account is not None and account not in self.accounts:
                raise NeedsPersonError(
                    f"Account {account} does not exist.", code="account_not_found", field="account"
                )
        if req.supplier and self.suppliers and req.supplier.number not in self.suppliers:
            raise NeedsPersonError(
                f"Supplier {req.supplier.number} does not exist.",
                code="supplier_not_found",
                field="supplier",
            )
        if req.lines and _debits(req) != _credits(req):
            raise NeedsPersonError(
                f"The journal does not balance: debits {_debits(req):,.2f}, credits "
                f"{_credits(req):,.2f}, difference {abs(_debits(req) - _credits(req)):,.2f}.",
                code="unbalanced",
            )
        if not req.lines and req.amount <= 0:
            raise NeedsPersonError("Amount must be greater than zero.", code="invalid_amount")

    def _body(self, req: PostingRequest) -> dict[str, Any]:
        return {
            "reference": req.reference,
            "currency": req.currency,
            "due_date": req.due_date.isoformat() if req.due_date else None,
            "department": req.department,
            "lines": [(line.account, str(line.amount)) for line in req.lines],
            "period": req.period,
        }

    async def create(self, req: PostingRequest) -> PostingResult:
        await self._enter()
        self._validate(req)
        if req.kind == "relation":
            assert req.relation is not None
            number = req.relation.number
            if number in self.relations:
                raise RecordExistsError(
                    f"{req.relation.type.capitalize()} number {number} is already in use.",
                    field="number",
                )
            self.relations[number] = Voucher(
                ref=number,
                kind="relation",
                reference_key=req.idempotency_key,
                date=req.date,
                amount=Decimal(0),
                text=req.relation.name,
                account=None,
                supplier=None,
            )
            self._after_write()
            return PostingResult(external_ref=number)
        voucher_number = self._next_number
        self._next_number += 1
        ref = f"{req.date.year}-{voucher_number}"
        self.vouchers[ref] = Voucher(
            ref=ref,
            kind=req.kind,
            reference_key=req.idempotency_key,
            date=req.date,
            amount=_voucher_amount(req),
            text=req.text,
            account=req.account,
            supplier=req.supplier.number if req.supplier else None,
            body=self._body(req),
        )
        self._after_write()
        return PostingResult(external_ref=ref, detail=f"voucher {voucher_number}")

    async def update(self, external_ref: str, req: PostingRequest) -> PostingResult:
        await self._enter()
        if req.kind == "relation":
            record = self.relations.get(external_ref)
            if record is None:
                raise NeedsPersonError(f"Relation {external_ref} does not exist.", code="not_found")
            record.text = req.relation.name if req.relation else record.text
            record.revision += 1
            self._after_write()
            return PostingResult(external_ref=external_ref)
        voucher = self.vouchers.get(external_ref)
        if voucher is None or voucher.reference_key != req.idempotency_key:
            raise NeedsPersonError(f"Voucher {external_ref} does not exist.", code="not_found")
        if voucher.status is RecordStatus.BOOKED:
            raise BookedError(f"Voucher {external_ref} is booked and cannot be changed.")
        self._validate(req)
        voucher.amount, voucher.text, voucher.account = _voucher_amount(req), req.text, req.account
        voucher.date, voucher.body = req.date, self._body(req)
        voucher.revision += 1
        self._after_write()
        return PostingResult(external_ref=external_ref, detail=f"voucher {external_ref}")

    async def delete(self, external_ref: str, req: PostingRequest) -> None:
        await self._enter()
        pool = self.relations if req.kind == "relation" else self.vouchers
        record = pool.get(external_ref)
        if record is None or record.reference_key != req.idempotency_key:
            return  # already gone, or the number is another document's: nothing of ours to delete
        if record.status is RecordStatus.BOOKED:
            raise BookedError(f"Voucher {external_ref} is booked and cannot be deleted.")
        del pool[external_ref]
        self._after_write()

    async def find(self, req: PostingRequest) -> PostingResult | None:
        await self._enter()
        for record in self.records_with_key(req.idempotency_key):
            return PostingResult(external_ref=record.ref, status=record.status)
        return None

    async def status(self, external_ref: str, req: PostingRequest) -> RecordStatus:
        await self._enter()
        pool = self.relations if req.kind == "relation" else self.vouchers
        record = pool.get(external_ref)
        # A number the ledger gave to another document (say, after the sandbox restarted
        # with an empty ledger) is not ours: to us our record is missing.
        if record is None or record.reference_key != req.idempotency_key:
            return RecordStatus.MISSING
        return record.status


def _lost_answer(mode: str) -> Exception:
    """What a connector sees when the answer to an applied write is lost.

    A 5xx is reported as a plain :class:`TransientError` (not flagged ``nothing_written``)
    and a dropped connection as an error no connector classifies: the engine's one rule
    (``sync.errors.classify``) must treat both as an unknown outcome.
    """
    if mode == "timeout":
        return UnknownOutcomeError("The ledger did not answer within 30 s.", code="timeout")
    if mode == "drop":
        return ConnectionResetError("The ledger closed the connection.")
    return TransientError(f"The ledger answered {mode}. Try again later.", code=f"http_{mode}")


def _debits(req: PostingRequest) -> Decimal:
    return sum((line.amount for line in req.lines if line.amount > 0), Decimal(0))


def _credits(req: PostingRequest) -> Decimal:
    return -sum((line.amount for line in req.lines if line.amount < 0), Decimal(0))


def _voucher_amount(req: PostingRequest) -> Decimal:
    """What the voucher is for: a journal's debit total (its amount field is unused)."""
    return _debits(req) if req.lines else req.amount
