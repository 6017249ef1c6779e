"""What the connector conformance suite needs from each connector and its fake ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from connectors.base import Connector, Party, PostingRequest
from connectors.sandbox import SandboxConnector, SandboxLedger


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

    def amount_of(self, external_ref: str) -> Decimal:
        """The amount the ledger holds for a record."""
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


class SandboxHarness:
    """The embedded sandbox ledger."""

    def __init__(self) -> None:
        self.ledger = SandboxLedger("conformance")
        self.connector = SandboxConnector(self.ledger)

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
