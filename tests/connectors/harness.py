"""What the connector conformance suite needs from each connector and its fake ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from connectors.base import (
    Connector,
    JournalLine,
    Party,
    PostingRequest,
    PostingResult,
    RecordStatus,
    RelationRecord,
)
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.ledger import SandboxLedger
from sync.errors import FailureKind, classify

#: what a record holds, compared by the conformance suite: an amount, or a relation's name
Holding = Decimal | str


class LedgerHarness(Protocol):
    """A connector wired to a fake (or embedded) ledger the test can steer and inspect."""

    connector: Connector

    def request(self, key: str, **overrides: Any) -> PostingRequest:
        """A valid supplier-invoice request this ledger accepts."""
        ...

    def unknown_account_request(self, key: str) -> PostingRequest:
        """A request the ledger refuses because its account does not exist."""
        ...

    async def book(self, external_ref: str) -> None:
        """Book the record in the ledger (it becomes immutable)."""
        ...

    def timeout_after_next_write(self) -> None:
        """The next write is applied, then no answer comes back."""
        ...

    def rate_limit_next(self, retry_after: int) -> None:
        """The next call answers 429 with ``Retry-After``."""
        ...

    def fail_next_with_5xx(self) -> None:
        """The next call answers 503."""
        ...

    def records_with_key(self, key: str) -> int:
        """How many records in the ledger carry this idempotency key (a duplicate shows as 2)."""
        ...

    #: the posting kinds the connector supports, each tested on its own
    kinds: tuple[str, ...]

    def posting(self, kind: str, key: str, amount: Decimal) -> PostingRequest:
        """A valid request of this kind; a relation's name carries ``amount`` so a change shows."""
        ...

    def holdings(self, kind: str, key: str) -> list[Holding]:
        """What each record carrying the key holds: the posted amount (a journal's debits),
        or a relation's name. Exactly one record with the right content is ``[expected]``."""
        ...

    def lose_next_answer(self, mode: str, *, skip: int = 0) -> None:
        """After ``skip`` successful writes, the next write is applied and its answer lost:
        ``mode`` is one of ``tests.fakes.lost_answer.MODES``."""
        ...

    def answers_lost(self) -> int:
        """How many answers the ``lose_next_answer`` switch has lost so far."""
        ...

    def amount_of(self, external_ref: str) -> Decimal:
        """The amount the ledger holds for a record."""
        ...

    def held(self, kind: str, key: str) -> int:
        """How many records carrying the key the ledger still holds, drafts and booked
        (a withdrawn one, deleted or voided, is not held)."""
        ...


def invoice_request(key: str, **overrides: Any) -> PostingRequest:
    base = PostingRequest(
        kind="invoice",
        idempotency_key=key,
        company_key="books",
        date=date(2026, 11, 2),
        due_date=date(2026, 12, 2),
        currency="DKK",
        amount=Decimal("1250.00"),
        text="Kontorland invoice INV-1",
        reference="INV-1",
        supplier=Party("3001", "Kontorland A/S"),
        account="2800",
    )
    return replace(base, **overrides)


def payment_request(key: str, amount: Decimal, bank: str, **overrides: Any) -> PostingRequest:
    """The payment posting of a bill: the supplier is settled from ``bank``."""
    return invoice_request(key, kind="payment", amount=amount, account=bank, due_date=None, **overrides)


def journal_request(key: str, amount: Decimal, debit: str, credit: str, **overrides: Any) -> PostingRequest:
    """A two-line payroll journal: ``amount`` debited to ``debit``, credited to ``credit``."""
    lines = (JournalLine(debit, amount, "Salaries"), JournalLine(credit, -amount, "Liabilities"))
    return invoice_request(
        key, kind="journal", amount=Decimal(0), lines=lines, period="2026-11", supplier=None, **overrides
    )


def relation_request(key: str, number: str, amount: Decimal, type: str = "debtor") -> PostingRequest:
    """A debtor (or creditor) whose name carries ``amount``, so an update shows in the ledger."""
    relation = RelationRecord(type=type, number=number, name=relation_name(amount))
    return invoice_request(key, kind="relation", amount=Decimal(0), supplier=None, relation=relation)


def relation_name(amount: Decimal) -> str:
    return f"Kontorland {amount}"


def expected_holding(kind: str, amount: Decimal) -> Holding:
    return relation_name(amount) if kind == "relation" else amount


def withdrawal(request: PostingRequest) -> PostingRequest:
    """What the worker passes when it withdraws a posting (``sync.withdrawal.withdrawal_request``):
    the key and the document's date only, no amount, account or party."""
    return PostingRequest(
        kind=request.kind,
        idempotency_key=request.idempotency_key,
        company_key=request.company_key,
        date=request.date,
    )


async def withdraw_as_the_worker(
    connector: Connector, request: PostingRequest, ref: str, *, tries: int = 6
) -> RecordStatus:
    """Withdraw ``ref`` as ``sync.worker`` does: status first, delete a draft, and after any
    failure that is not a refusal try again from the status (a lost delete is harmless)."""
    for _ in range(tries):
        try:
            status = await connector.status(ref, request)
            if status is RecordStatus.DRAFT:
                await connector.delete(ref, request)
                status = RecordStatus.MISSING
            return status
        except Exception as exc:
            if classify(exc, during_write=False).kind not in (FailureKind.TRANSIENT, FailureKind.UNCERTAIN):
                raise
    raise AssertionError(f"still failing after {tries} tries")


async def sync_as_the_worker(
    connector: Connector,
    request: PostingRequest,
    *,
    ref: str | None = None,
    synced: PostingRequest | None = None,
    tries: int = 6,
) -> PostingResult:
    """Send ``request`` as ``sync.worker`` does, retrying by the engine's one rule.

    ``ref``/``synced`` are the record and content already synced (an update). On a
    failure :func:`sync.errors.classify` decides: an unknown outcome makes the next
    try look the record up by its key first; a transient one tries again as it was.
    """
    look_first, sent = False, synced
    for _ in range(tries):
        writing = False
        try:
            status: RecordStatus | None = None
            if ref is None and look_first:
                found = await connector.find(request)
                look_first = False
                if found is not None:
                    ref, status, synced = found.external_ref, found.status, sent
            if ref is not None:
                status = status or await connector.status(ref, request)
                if status is RecordStatus.BOOKED:
                    return PostingResult(ref, status)
                if status is RecordStatus.DRAFT and synced == request:
                    return PostingResult(ref, status)
                if status is RecordStatus.DRAFT:
                    writing = True
                    return await connector.update(ref, request)
                ref = None
            writing = True
            return await connector.create(request)
        except Exception as exc:
            failure = classify(exc, during_write=writing)
            if failure.kind is FailureKind.UNCERTAIN:
                look_first, sent = True, request
            elif failure.kind is not FailureKind.TRANSIENT:
                raise
    raise AssertionError(f"still failing after {tries} tries")


class SandboxHarness:
    """The embedded sandbox ledger."""

    kinds = ("invoice", "payment", "journal", "relation")

    def __init__(self) -> None:
        self.ledger = SandboxLedger("conformance")
        self.connector = SandboxConnector(self.ledger)
        self._lost = 0

    def request(self, key: str, **overrides: Any) -> PostingRequest:
        return invoice_request(key, **overrides)

    def unknown_account_request(self, key: str) -> PostingRequest:
        return invoice_request(key, account="9999")

    async def book(self, external_ref: str) -> None:
        self.ledger.book(external_ref)

    def timeout_after_next_write(self) -> None:
        self.ledger.switches.timeouts_after_write = 1

    def rate_limit_next(self, retry_after: int) -> None:
        self.ledger.switches.rate_limit_next = retry_after

    def fail_next_with_5xx(self) -> None:
        self.ledger.switches.fail_next = 1

    def records_with_key(self, key: str) -> int:
        return len(self.ledger.records_with_key(key))

    def amount_of(self, external_ref: str) -> Decimal:
        return self.ledger.vouchers[external_ref].amount

    def posting(self, kind: str, key: str, amount: Decimal) -> PostingRequest:
        if kind == "payment":
            return payment_request(key, amount, "5820")
        if kind == "journal":
            return journal_request(key, amount, "4000", "6900")
        if kind == "relation":
            number = str(10001 + len(self.ledger.relations))
            found = self.ledger.records_with_key(key)  # the same debtor for the same key
            return relation_request(key, found[0].ref if found else number, amount)
        return invoice_request(key, amount=amount)

    def holdings(self, kind: str, key: str) -> list[Holding]:
        found: list[Holding] = []
        for record in self.ledger.records_with_key(key):
            if kind == "relation":
                found.append(record.text)
            elif kind == "journal":
                found.append(sum((Decimal(a) for _, a in record.body["lines"] if Decimal(a) > 0), Decimal(0)))
            else:
                found.append(record.amount)
        return found

    def lose_next_answer(self, mode: str, *, skip: int = 0) -> None:
        self.ledger.switches.lost_answer = mode
        self.ledger.switches.lost_answer_skip = skip

    def answers_lost(self) -> int:
        return self.ledger.answers_lost

    def held(self, kind: str, key: str) -> int:
        return len(self.ledger.records_with_key(key))
