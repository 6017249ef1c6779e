"""A posting the bill no longer needs leaves each HTTP ledger through the real worker (issue 10.3).

e-conomic and Procountor take a bill's payment, so the bill is sent again with
``paid: null``; Exact Online takes no payment postings, so there the bill is sent
again unapproved and its invoice (a purchase entry) is withdrawn instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.runtime import Runtime
from connectors.economic.client import EconomicConnector
from sync.config import IntegrationConfig, Mappings
from tests.connectors.conftest import FAKE_TIMEOUT_SECONDS
from tests.fakes.economic_server import AGREEMENT_GRANT_TOKEN, APP_SECRET_TOKEN, FakeEconomic
from tests.fakes.exact_server import ExactFake, MemoryTokenStore
from tests.fakes.exact_server import build_connector as exact_connector
from tests.fakes.procountor_server import ProcountorFake
from tests.fakes.procountor_server import build_connector as procountor_connector
from tests.support import bill, make_config
from tests.test_withdraw import PAID, ingest, posting, view

MAPPINGS = Mappings(categories={"Office supplies": 2800})


@dataclass
class Ledger:
    """A runtime whose one integration writes to a fake ledger, and what tests ask of it."""

    runtime: Runtime
    integration: str
    currency: str
    holds: Callable[[str], bool]  # the record is still in the books (draft or booked)
    book: Callable[[str], None]
    writes: Callable[[], int]  # write calls the fake has had


async def _economic(make_runtime: Any) -> AsyncIterator[Ledger]:
    fake = FakeEconomic()
    await fake.start()
    cfg = IntegrationConfig(name="economic-dk", kind="economic", payment_account=5820, mappings=MAPPINGS)

    def connector(_cfg: IntegrationConfig) -> EconomicConnector:
        return EconomicConnector(
            name="economic-dk",
            base_url=fake.url,
            app_secret_token=APP_SECRET_TOKEN,
            agreement_grant_token=AGREEMENT_GRANT_TOKEN,
            payment_account=5820,
            timeout=FAKE_TIMEOUT_SECONDS,
        )

    def holds(ref: str) -> bool:
        year, _, number = ref.rpartition("-")
        booked = any(r["voucherNumber"] == int(number) for r in fake.ledger.get(year, []))
        return ref in fake.draft_vouchers() or booked

    runtime = await make_runtime(make_config(cfg), connectors=connector)
    writes = lambda: sum(r.method != "GET" for r in fake.requests)  # noqa: E731
    yield Ledger(runtime, cfg.name, "DKK", holds, fake.book_ref, writes)
    await fake.stop()


async def _procountor(make_runtime: Any) -> AsyncIterator[Ledger]:
    fake = ProcountorFake()
    await fake.start()
    cfg = IntegrationConfig(name="procountor-fi", kind="procountor", payment_account=1910, mappings=MAPPINGS)

    def holds(ref: str) -> bool:
        receipt = fake.receipts.get(int(ref))
        return receipt is not None and receipt["status"] != "INVALIDATED"

    runtime = await make_runtime(make_config(cfg), connectors=lambda _cfg: procountor_connector(fake))
    writes = lambda: sum(method != "GET" for method, _ in fake.calls)  # noqa: E731
    yield Ledger(runtime, cfg.name, "EUR", holds, fake.book, writes)
    await fake.stop()


async def _exact(make_runtime: Any) -> AsyncIterator[Ledger]:
    fake = ExactFake(scale=1000.0)
    await fake.start()
    cfg = IntegrationConfig(name="exact-nl", kind="exact", mappings=MAPPINGS)

    def connector(_cfg: IntegrationConfig) -> Any:
        return exact_connector(fake, MemoryTokenStore(), refresh_token=fake.issue_refresh_token())

    def holds(ref: str) -> bool:
        try:
            return bool(fake.entry(ref))
        except KeyError:
            return False

    runtime = await make_runtime(make_config(cfg), connectors=connector)
    writes = lambda: sum(method != "GET" for method, _ in fake.calls)  # noqa: E731
    yield Ledger(runtime, cfg.name, "EUR", holds, fake.book, writes)
    await fake.stop()


#: ledger -> (the posting withdrawn, the bill's first and second version, why in words)
CASES: dict[str, tuple[Any, str, dict[str, Any], dict[str, Any], str]] = {
    "economic": (_economic, "payment", {"paid": PAID}, {"paid": None}, "the bill is no longer paid"),
    "procountor": (_procountor, "payment", {"paid": PAID}, {"paid": None}, "the bill is no longer paid"),
    "exact": (_exact, "invoice", {}, {"approved": False}, "the bill is no longer approved"),
}


@pytest.fixture(params=sorted(CASES))
async def case(request: pytest.FixtureRequest, make_runtime: Any) -> AsyncIterator[tuple[Ledger, Any]]:
    start, *rest = CASES[request.param]
    async for ledger in start(make_runtime):
        yield ledger, rest


async def _synced(ledger: Ledger, doc: str, kind: str, first: dict[str, Any]) -> str:
    """Sync the bill's first version; the reference of the posting to withdraw."""
    await ingest(ledger.runtime, bill(doc, integration=ledger.integration, currency=ledger.currency, **first))
    await ledger.runtime.worker.run_until_idle()
    p = posting(await view(ledger.runtime, doc), kind)
    assert p["state"] == "synced" and ledger.holds(p["external_ref"]), p
    return str(p["external_ref"])


async def _send_again(ledger: Ledger, doc: str, second: dict[str, Any]) -> dict[str, Any]:
    event = bill(doc, version=2, integration=ledger.integration, currency=ledger.currency, **second)
    await ingest(ledger.runtime, event)
    await ledger.runtime.worker.run_until_idle()
    return await view(ledger.runtime, doc)


def _latest(v: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(a for a in v["attempts"] if a["posting"] == kind)  # newest first


async def test_a_draft_the_bill_no_longer_needs_is_deleted_from_the_ledger(case: tuple[Ledger, Any]) -> None:
    ledger, (kind, first, second, _why) = case
    ref = await _synced(ledger, "W-1", kind, first)
    v = await _send_again(ledger, "W-1", second)
    assert posting(v, kind)["state"] == "withdrawn"
    latest = _latest(v, kind)
    assert (latest["operation"], latest["outcome"], latest["external_ref"]) == ("delete", "withdrawn", ref)
    assert not ledger.holds(ref)
    if kind == "payment":  # the bill itself stays booked as it was
        invoice = posting(v, "invoice")
        assert invoice["state"] == "synced" and ledger.holds(invoice["external_ref"])


async def test_a_booked_one_is_flagged_to_a_person_and_left_alone(case: tuple[Ledger, Any]) -> None:
    ledger, (kind, first, second, why) = case
    ref = await _synced(ledger, "W-2", kind, first)
    ledger.book(ref)
    writes = ledger.writes()
    v = await _send_again(ledger, "W-2", second)
    p = posting(v, kind)
    assert p["state"] == "booked"
    assert p["last_error"] == f"{kind} {ref} is booked; {why} — reverse it in the ledger"
    assert _latest(v, kind)["outcome"] == "booked"
    assert ledger.holds(ref) and ledger.writes() == writes  # the ledger is untouched
