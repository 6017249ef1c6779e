"""One conformance suite runs against every connector: add a harness to HARNESSES."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import PostingRequest
from connectors.economic.client import EconomicConnector
from tests.connectors.harness import (
    Holding,
    LedgerHarness,
    SandboxHarness,
    invoice_request,
    payment_request,
    relation_request,
)
from tests.fakes.economic_server import AGREEMENT_GRANT_TOKEN, APP_SECRET_TOKEN, FakeEconomic
from tests.fakes.exact_server import exact_harness
from tests.fakes.procountor_server import procountor_harness

#: short enough that a test waiting for a lost answer never waits long
FAKE_TIMEOUT_SECONDS = 0.5


async def _sandbox() -> AsyncIterator[LedgerHarness]:
    yield SandboxHarness()


class EconomicHarness:
    """The e-conomic connector against the fake e-conomic server on loopback."""

    kinds = ("invoice", "payment", "relation")

    def __init__(self, fake: FakeEconomic, connector: EconomicConnector):
        self.fake = fake
        self.connector = connector
        self._debtors: dict[str, str] = {}  # idempotency key -> debtor number

    def request(self, key: str, **overrides: Any) -> PostingRequest:
        return invoice_request(key, **overrides)

    def unknown_account_request(self, key: str) -> PostingRequest:
        return invoice_request(key, account="9999")

    async def book(self, external_ref: str) -> None:
        self.fake.book_ref(external_ref)

    def timeout_after_next_write(self) -> None:
        self.fake.switches.timeouts_after_write = 1

    def rate_limit_next(self, retry_after: int) -> None:
        self.fake.switches.rate_limit_next = retry_after

    def fail_next_with_5xx(self) -> None:
        self.fake.switches.fail_next = 1

    def records_with_key(self, key: str) -> int:
        return self.fake.records_with_key(key)

    def amount_of(self, external_ref: str) -> Decimal:
        # The ledger holds a supplier invoice as a credit to the supplier (negative);
        # the amount of the bill is its opposite.
        return -self.fake.amount_of(external_ref)

    def posting(self, kind: str, key: str, amount: Decimal) -> PostingRequest:
        if kind == "payment":
            return payment_request(key, amount, "5820")
        if kind == "relation":
            number = self._debtors.setdefault(key, str(10001 + len(self._debtors)))
            return relation_request(key, number, amount)
        return invoice_request(key, amount=amount)

    def holdings(self, kind: str, key: str) -> list[Holding]:
        if kind == "relation":
            number = int(self._debtors[key])
            return [c["name"] for n, c in self.fake.customers.items() if n == number]
        marker = f"[{key}]"
        sign = -1 if kind == "invoice" else 1  # an invoice credits the supplier
        return [
            sign * sum((Decimal(e.data["amount"]) for e in entries), Decimal(0))
            for entries in self.fake.draft_vouchers().values()
            if any(marker in e.data.get("text", "") for e in entries)
        ]

    def lose_next_answer(self, mode: str, *, skip: int = 0) -> None:
        self.fake.lost_answer.arm(mode, skip=skip)

    def answers_lost(self) -> int:
        return self.fake.lost_answer.fired

    def held(self, kind: str, key: str) -> int:
        if kind == "relation":  # a debtor carries no key: the number the key was given
            return int(int(self._debtors.get(key, "0")) in self.fake.customers)
        return self.fake.records_with_key(key)


async def _economic() -> AsyncIterator[LedgerHarness]:
    fake = FakeEconomic()
    url = await fake.start()
    connector = EconomicConnector(
        name="economic-test",
        base_url=url,
        app_secret_token=APP_SECRET_TOKEN,
        agreement_grant_token=AGREEMENT_GRANT_TOKEN,
        journal=1,
        payment_account=5820,
        timeout=FAKE_TIMEOUT_SECONDS,
    )
    try:
        yield EconomicHarness(fake, connector)
    finally:
        await connector.aclose()
        await fake.stop()


#: name -> async generator yielding a ready harness (starts and stops its fake server)
HARNESSES: dict[str, Callable[[], Any]] = {
    "sandbox": _sandbox,
    "economic": _economic,
    "procountor": procountor_harness,
    "exact": exact_harness,
}


async def _run(name: str) -> AsyncIterator[Any]:
    gen = HARNESSES[name]()
    h = await gen.__anext__()
    try:
        yield h
    finally:
        await h.connector.aclose()
        with contextlib.suppress(StopAsyncIteration):
            await gen.__anext__()


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[LedgerHarness]:
    async for h in _run(request.param):
        yield h


@pytest.fixture
async def economic() -> AsyncIterator[EconomicHarness]:
    """The e-conomic harness alone, for the e-conomic particulars."""
    async for h in _run("economic"):
        yield h


Factory = Callable[[], Awaitable[LedgerHarness]]
