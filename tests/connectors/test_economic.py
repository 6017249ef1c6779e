"""e-conomic particulars, against the fake e-conomic server on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from connectors import registry
from connectors.base import (
    Address,
    AuthenticationError,
    BookedError,
    NeedsPersonError,
    Party,
    PostingRequest,
    RecordExistsError,
    RecordStatus,
    RelationRecord,
    TransientError,
    UnknownOutcomeError,
    encode_json,
    retry_after_seconds,
)
from connectors.economic.client import EconomicConnector
from connectors.economic.vouchers import entry_text, filter_value
from storage.models import Attempt, Posting
from sync.config import IntegrationConfig, Mappings
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from tests.connectors.conftest import FAKE_TIMEOUT_SECONDS, EconomicHarness
from tests.connectors.harness import invoice_request, sync_as_the_worker
from tests.fakes.economic_server import (
    AGREEMENT_GRANT_TOKEN,
    APP_SECRET_TOKEN,
    FakeEconomic,
    JournalEntry,
)
from tests.support import FakeClock, bill, make_config

TOKENS = (APP_SECRET_TOKEN, AGREEMENT_GRANT_TOKEN)


def sent_entries(fake: FakeEconomic, kind: str) -> list[dict[str, Any]]:
    """Every entry of ``kind`` the fake received in voucher POSTs, in order."""
    return [
        entry
        for r in fake.posted("POST", "/journals/1/vouchers")
        for entry in r.body["entries"].get(kind, [])
    ]


def payment_request(key: str, **overrides: Any) -> PostingRequest:
    return invoice_request(
        key,
        kind="payment",
        account="5820",
        due_date=None,
        text="Payment Kontorland invoice INV-1",
        **overrides,
    )


# -- what goes into the voucher ----------------------------------------------------------------
async def test_invoice_is_a_supplier_invoice_with_mapped_account_and_department(
    economic: EconomicHarness,
) -> None:
    req = invoice_request("LO-ECON0001", account="2820", department="2", amount=Decimal("1250.50"))
    result = await economic.connector.create(req)
    assert result.external_ref == "2026-50001"
    [post] = economic.fake.posted("POST", "/journals/1/vouchers")
    assert post.body["accountingYear"] == {"year": "2026"}
    assert post.body["journal"] == {"journalNumber": 1}
    assert set(post.body["entries"]) == {"supplierInvoices"}
    [entry] = post.body["entries"]["supplierInvoices"]
    assert entry["supplier"] == {"supplierNumber": 3001}
    assert entry["contraAccount"] == {"accountNumber": 2820}
    assert entry["departmentalDistribution"] == {"departmentalDistributionNumber": 2}
    assert entry["supplierInvoiceNumber"] == "INV-1"
    assert entry["currency"] == {"code": "DKK"}
    assert (entry["date"], entry["dueDate"]) == ("2026-11-02", "2026-12-02")
    # An invoice credits the supplier; the amount is a JSON number, digit for digit.
    assert entry["amount"] == Decimal("-1250.50")
    assert b'"amount":-1250.50' in post.raw
    # The server numbers the voucher.
    assert "voucher" not in entry and "voucherNumber" not in post.body


async def test_payment_is_a_supplier_payment_against_the_payment_account(economic: EconomicHarness) -> None:
    result = await economic.connector.create(payment_request("LO-ECON0002"))
    assert result.status is RecordStatus.DRAFT
    assert sent_entries(economic.fake, "supplierInvoices") == []
    [entry] = sent_entries(economic.fake, "supplierPayments")
    assert entry["contraAccount"] == {"accountNumber": 5820}
    assert entry["amount"] == Decimal("1250.00")  # debits the supplier: the debt goes down
    assert entry["supplierInvoiceNumber"] == "INV-1"
    assert "dueDate" not in entry


async def test_the_idempotency_key_is_in_the_entry_text_within_250_characters(
    economic: EconomicHarness,
) -> None:
    await economic.connector.create(invoice_request("LO-ECON0003", text="Kontorland " * 40))
    [entry] = sent_entries(economic.fake, "supplierInvoices")
    assert entry["text"].endswith(" [LO-ECON0003]")
    assert len(entry["text"]) <= 250
    assert entry["text"].startswith("Kontorland Kontorland")
    assert entry_text("Short", "LO-1") == "Short [LO-1]"


# -- update, booking, look-up ------------------------------------------------------------------
async def test_update_deletes_the_old_entries_and_reposts_with_the_same_number(
    economic: EconomicHarness,
) -> None:
    fake = economic.fake
    created = await economic.connector.create(invoice_request("LO-ECON0004"))
    [old] = fake.draft_vouchers()[created.external_ref]
    await economic.connector.create(invoice_request("LO-ECON0005"))  # a neighbour stays put
    changed = invoice_request("LO-ECON0004", amount=Decimal("990.00"), account="2820")
    updated = await economic.connector.update(created.external_ref, changed)
    assert updated.external_ref == created.external_ref == "2026-50001"
    assert [r.path for r in fake.posted("DELETE", "/journals")] == [f"/journals/1/entries/{old.number}"]
    repost = fake.posted("POST", "/journals/1/vouchers")[-1]
    assert repost.body["entries"]["supplierInvoices"][0]["voucher"] == {"voucherNumber": 50001}
    [new] = fake.draft_vouchers()["2026-50001"]
    assert new.number != old.number
    assert (new.data["amount"], new.data["contraAccount"]) == (Decimal("-990.00"), {"accountNumber": 2820})
    assert sorted(fake.draft_vouchers()) == ["2026-50001", "2026-50002"]
    assert fake.records_with_key("LO-ECON0004") == 1


async def test_booked_voucher_is_found_by_key_and_never_rewritten(economic: EconomicHarness) -> None:
    fake = economic.fake
    req = invoice_request("LO-ECON0006")
    created = await economic.connector.create(req)
    fake.book_ref(created.external_ref)
    assert fake.draft_vouchers() == {}
    writes = fake.writes
    found = await economic.connector.find(req)
    assert found is not None
    assert (found.external_ref, found.status) == (created.external_ref, RecordStatus.BOOKED)
    with pytest.raises(BookedError):
        await economic.connector.update(created.external_ref, req)
    assert fake.writes == writes


async def test_find_falls_back_to_the_date_when_text_cannot_be_filtered(economic: EconomicHarness) -> None:
    fake = economic.fake
    req = invoice_request("LO-ECON0007")
    created = await economic.connector.create(req)
    await economic.connector.create(invoice_request("LO-ECON0008"))
    fake.book_ref(created.external_ref)
    fake.book_ref("2026-50002")
    fake.switches.text_filterable = False
    found = await economic.connector.find(req)
    assert found is not None and found.external_ref == created.external_ref
    filters = [r.query.get("filter") for r in fake.requests if "accounting-years" in r.path]
    assert filters == ["text$like:LO-ECON0007", "date$eq:2026-11-02"]


async def test_a_voucher_deleted_in_the_ledger_is_missing(economic: EconomicHarness) -> None:
    fake = economic.fake
    req = invoice_request("LO-ECON0009")
    created = await economic.connector.create(req)
    for entry in fake.draft_vouchers()[created.external_ref]:
        del fake.entries[entry.number]
    assert await economic.connector.status(created.external_ref, req) is RecordStatus.MISSING
    assert await economic.connector.find(req) is None
    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.update(created.external_ref, req)
    assert err.value.code == "not_found"


async def test_an_update_we_would_refuse_ourselves_keeps_the_old_entries(economic: EconomicHarness) -> None:
    created = await economic.connector.create(invoice_request("LO-ECON0023"))
    with pytest.raises(NeedsPersonError):
        await economic.connector.update(created.external_ref, invoice_request("LO-ECON0023", account="28A0"))
    assert economic.fake.posted("DELETE", "/journals") == []
    assert len(economic.fake.draft_vouchers()[created.external_ref]) == 1


async def test_a_refused_repost_says_the_draft_is_gone_and_a_resync_posts_it_once(
    economic: EconomicHarness,
) -> None:
    first = invoice_request("LO-ECON0024")
    created = await economic.connector.create(first)
    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.update(created.external_ref, invoice_request("LO-ECON0024", account="9999"))
    assert "9999" in err.value.message and "already removed" in err.value.message
    assert err.value.code == "account_not_found"
    fixed = invoice_request("LO-ECON0024", amount=Decimal("990.00"))
    await sync_as_the_worker(economic.connector, fixed, ref=created.external_ref, synced=first)
    assert economic.holdings("invoice", "LO-ECON0024") == [Decimal("990.00")]


async def test_find_pages_through_a_long_journal(economic: EconomicHarness) -> None:
    fake = economic.fake
    for n in range(1005):
        # Other vouchers in the journal, put there directly: more than one page of them.
        fake.entries[10_000 + n] = JournalEntry(
            10_000 + n, 1, "2026", 40_000 + n, "supplierInvoices", {"text": f"other {n}"}
        )
    req = invoice_request("LO-ECON0010")
    await economic.connector.create(req)
    found = await economic.connector.find(req)
    assert found is not None and found.external_ref == "2026-50001"
    pages = [
        r.query["skippages"] for r in fake.requests if r.path == "/journals/1/vouchers" and r.method == "GET"
    ]
    assert pages == ["0", "1"]


# -- errors ------------------------------------------------------------------------------------
async def test_validation_errors_carry_the_field_and_the_ledger_text(economic: EconomicHarness) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.create(invoice_request("LO-ECON0011", account="9999"))
    assert err.value.message == "contraAccount: Account 9999 does not exist."
    assert (err.value.field, err.value.code) == ("contraAccount", "account_not_found")

    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.create(invoice_request("LO-ECON0012", supplier=Party("4711", "Nobody")))
    assert err.value.message == "supplier: Supplier 4711 does not exist."
    assert err.value.code == "supplier_not_found"

    long_number = "INV-" + "9" * 40
    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.create(invoice_request("LO-ECON0013", reference=long_number))
    assert err.value.field == "supplierInvoiceNumber"
    assert "at most 30 characters" in err.value.message and long_number in err.value.message
    assert economic.fake.records_with_key("LO-ECON0013") == 0


async def test_a_non_numeric_supplier_is_refused_before_anything_is_sent(economic: EconomicHarness) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await economic.connector.create(invoice_request("LO-ECON0014", supplier=Party("K-1", "Kontorland")))
    assert err.value.field == "supplier"
    assert economic.fake.requests == []


async def test_a_lost_answer_while_the_server_hangs_is_an_unknown_outcome(economic: EconomicHarness) -> None:
    fake = economic.fake
    fake.switches.timeout_mode = "hang"
    fake.switches.timeouts_after_write = 1
    req = invoice_request("LO-ECON0015")
    with pytest.raises(UnknownOutcomeError) as err:
        await economic.connector.create(req)
    assert f"{FAKE_TIMEOUT_SECONDS:g} s" in err.value.message
    assert fake.records_with_key("LO-ECON0015") == 1
    found = await economic.connector.find(req)
    assert found is not None and found.status is RecordStatus.DRAFT


async def test_a_gateway_error_after_a_write_is_unknown_but_transient_on_a_read(
    economic: EconomicHarness,
) -> None:
    fake = economic.fake
    fake.switches.fail_status = 502
    fake.switches.fail_next = 1
    with pytest.raises(UnknownOutcomeError):
        await economic.connector.create(invoice_request("LO-ECON0016"))
    fake.switches.fail_next = 1
    with pytest.raises(TransientError) as err:
        await economic.connector.status("2026-50001", invoice_request("LO-ECON0016"))
    assert err.value.code == "http_502"


async def test_an_unreachable_ledger_is_transient_even_for_a_write() -> None:
    fake = FakeEconomic()
    url = await fake.start()
    await fake.stop()  # the port is closed now: nothing can have been sent
    connector = EconomicConnector(
        base_url=url,
        app_secret_token=APP_SECRET_TOKEN,
        agreement_grant_token=AGREEMENT_GRANT_TOKEN,
        timeout=0.5,
    )
    try:
        with pytest.raises(TransientError) as err:
            await connector.create(invoice_request("LO-ECON0017"))
        assert err.value.code == "unreachable"
    finally:
        await connector.aclose()


async def test_tokens_never_appear_in_errors_logs_or_reprs(
    economic: EconomicHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = economic.fake
    seen: list[BaseException] = []
    url = fake.url

    async def expect(exc_type: type[BaseException], action: Any) -> None:
        with pytest.raises(exc_type) as err:
            await action
        seen.append(err.value)

    wrong = EconomicConnector(
        base_url=url,
        app_secret_token=APP_SECRET_TOKEN + "-old",
        agreement_grant_token=AGREEMENT_GRANT_TOKEN,
        timeout=0.5,
    )
    try:
        await expect(AuthenticationError, wrong.create(invoice_request("LO-ECON0018")))
        assert "Renew" in str(seen[-1])
    finally:
        await wrong.aclose()
    connector = economic.connector
    await expect(NeedsPersonError, connector.create(invoice_request("LO-ECON0019", account="9999")))
    fake.switches.rate_limit_next = 3
    await expect(TransientError, connector.create(invoice_request("LO-ECON0020")))
    fake.switches.fail_next = 1  # a 503 after a write: an unknown outcome (connectors.http)
    await expect(UnknownOutcomeError, connector.create(invoice_request("LO-ECON0021")))
    fake.switches.timeouts_after_write = 1
    await expect(UnknownOutcomeError, connector.create(invoice_request("LO-ECON0022")))
    texts = [caplog.text, repr(connector), repr(wrong)]
    for exc in seen:
        texts += [
            str(exc),
            repr(exc),
            getattr(exc, "message", ""),
            repr(exc.__cause__),
            repr(exc.__context__),
            repr(vars(exc)),
        ]
    for token in TOKENS:
        assert not any(token in text for text in texts), token
    # The fake got them, so the test would notice had they gone missing.
    assert all(
        r.headers.get("X-AppSecretToken", "").startswith(APP_SECRET_TOKEN)
        and r.headers.get("X-AgreementGrantToken") == AGREEMENT_GRANT_TOKEN
        and r.headers.get("Content-Type") == "application/json"
        for r in fake.requests
    )


async def test_missing_tokens_are_a_startup_error_naming_the_integration() -> None:
    with pytest.raises(ValueError) as err:
        registry.build("economic", "economic-dk", {"app_secret_token": "s3cr3t-value"})
    assert "economic-dk" in str(err.value) and "s3cr3t-value" not in str(err.value)
    built = registry.build(
        "economic",
        "economic-dk",
        {
            "app_secret_token": "a",
            "agreement_grant_token": "b",
            "journal": 3,
            "payment_account": 5820,
            "fee_account": None,
        },
    )
    try:
        assert isinstance(built, EconomicConnector)
        assert (built.journal, built.base_url, built.payment_account) == (
            3,
            "https://restapi.e-conomic.com",
            "5820",
        )
    finally:
        await built.aclose()


# -- debtors -----------------------------------------------------------------------------------
def debtor_request(key: str, number: str = "10001", name: str = "Hansen ApS") -> PostingRequest:
    return PostingRequest(
        kind="relation",
        idempotency_key=key,
        company_key="books",
        date=invoice_request(key).date,
        relation=RelationRecord(
            type="debtor",
            number=number,
            name=name,
            email="a@hansen.dk",
            vat_number="DK12345678",
            address=Address("Vej 1", "8000", "Aarhus", "Denmark"),
        ),
    )


async def test_debtors_are_created_updated_and_refused_when_the_number_is_taken(
    economic: EconomicHarness,
) -> None:
    fake, connector = economic.fake, economic.connector
    created = await connector.create(debtor_request("LO-DEBT0001"))
    assert created.external_ref == "10001"
    customer = fake.customers[10001]
    assert customer["name"] == "Hansen ApS" and customer["zip"] == "8000"
    assert customer["vatZone"] == {"vatZoneNumber": 1}
    with pytest.raises(RecordExistsError) as err:
        await connector.create(debtor_request("LO-DEBT0002"))
    assert "10001" in err.value.message
    fake.customers[10001]["telephoneAndFaxNumber"] = "+45 1234"  # set by a person in e-conomic
    await connector.update("10001", debtor_request("LO-DEBT0001", name="Hansen & Søn ApS"))
    [put] = fake.posted("PUT", "/customers")
    assert put.path == "/customers/10001"
    assert fake.customers[10001]["name"] == "Hansen & Søn ApS"
    assert fake.customers[10001]["telephoneAndFaxNumber"] == "+45 1234"  # PUT kept it
    req = debtor_request("LO-DEBT0001")
    assert await connector.status("10001", req) is RecordStatus.DRAFT
    assert await connector.status("10002", req) is RecordStatus.MISSING
    found = await connector.find(req)
    assert found is not None and found.external_ref == "10001"


# -- small pieces ------------------------------------------------------------------------------
def test_decimals_are_json_numbers_and_text_cannot_forge_one() -> None:
    raw = encode_json(
        {"amount": Decimal("-1250.00"), "n": Decimal("7"), "text": '":1" 1250.00', "list": [Decimal("0.10")]}
    )
    assert raw == b'{"amount":-1250.00,"n":7,"text":"\\":1\\" 1250.00","list":[0.10]}'
    with pytest.raises(ValueError):
        encode_json({"amount": Decimal("NaN")})


def test_retry_after_and_filter_escaping() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert retry_after_seconds(None) is None
    assert filter_value("a$b(c)*,[d]") == "a$$b$(c$)$*$,$[d$]"


# -- through the engine ------------------------------------------------------------------------
@pytest.fixture
async def fake_economic() -> AsyncIterator[FakeEconomic]:
    fake = FakeEconomic()
    await fake.start()
    yield fake
    await fake.stop()


async def economic_runtime(make_runtime: Any, fake: FakeEconomic) -> Any:
    integration = IntegrationConfig(
        name="economic-dk",
        kind="economic",
        payment_account=5820,
        journal=1,
        base_url=fake.url,
        app_secret_token="env:ECONOMIC_APP_SECRET_TOKEN",
        agreement_grant_token="env:ECONOMIC_AGREEMENT_GRANT_TOKEN",
        mappings=Mappings(categories={"Office supplies": 2800, "Software": 2820}, departments={"Sales": 1}),
    )

    def connectors(cfg: IntegrationConfig) -> EconomicConnector:
        return EconomicConnector(
            name=cfg.name,
            base_url=fake.url,
            app_secret_token=APP_SECRET_TOKEN,
            agreement_grant_token=AGREEMENT_GRANT_TOKEN,
            journal=cfg.connector.journal or 1,
            payment_account=cfg.payment_account,
            timeout=FAKE_TIMEOUT_SECONDS,
        )

    return await make_runtime(make_config(integration), connectors=connectors)


async def ingest(runtime: Any, *events: dict[str, Any]) -> None:
    valid, errors = validate_batch({"events": list(events)}, {"economic-dk"})
    assert errors == []
    await ingest_batch(runtime.engine, valid)


async def postings(runtime: Any) -> dict[str, Posting]:
    async with runtime.db.sessions() as s:
        return {p.kind: p for p in (await s.scalars(select(Posting))).all()}


async def test_engine_a_timeout_after_the_write_leaves_exactly_one_voucher(
    make_runtime: Any, clock: FakeClock, fake_economic: FakeEconomic
) -> None:
    runtime = await economic_runtime(make_runtime, fake_economic)
    fake_economic.switches.timeouts_after_write = 1
    await ingest(runtime, bill("B-7001", integration="economic-dk"))
    await runtime.worker.run_until_idle()
    invoice = (await postings(runtime))["invoice"]
    assert invoice.state == "retrying" and invoice.lookup_first
    assert fake_economic.records_with_key(invoice.idempotency_key) == 1
    clock.advance(2 * 3600)  # past any backoff
    await runtime.worker.run_until_idle()
    invoice = (await postings(runtime))["invoice"]
    assert (invoice.state, invoice.external_ref) == ("synced", "2026-50001")
    assert fake_economic.records_with_key(invoice.idempotency_key) == 1
    assert len(fake_economic.posted("POST", "/journals/1/vouchers")) == 1
    async with runtime.db.sessions() as s:
        attempts = (await s.scalars(select(Attempt).order_by(Attempt.id))).all()
    assert [(a.operation, a.outcome) for a in attempts] == [("create", "uncertain"), ("lookup", "synced")]


async def test_engine_payment_goes_only_once_the_bill_is_paid(
    make_runtime: Any, fake_economic: FakeEconomic
) -> None:
    runtime = await economic_runtime(make_runtime, fake_economic)
    await ingest(runtime, bill("B-7002", integration="economic-dk", department="Sales"))
    await runtime.worker.run_until_idle()
    assert set(await postings(runtime)) == {"invoice"}
    assert sent_entries(fake_economic, "supplierPayments") == []
    [invoice] = sent_entries(fake_economic, "supplierInvoices")
    assert invoice["contraAccount"] == {"accountNumber": 2800}
    assert invoice["departmentalDistribution"] == {"departmentalDistributionNumber": 1}

    await ingest(
        runtime,
        bill(
            "B-7002",
            version=2,
            integration="economic-dk",
            department="Sales",
            amount="1300.00",
            paid={"date": "2026-11-20", "amount": "1300.00"},
        ),
    )
    await runtime.worker.run_until_idle()
    rows = await postings(runtime)
    assert {k: (p.state, p.external_ref) for k, p in rows.items()} == {
        "invoice": ("synced", "2026-50001"),
        "payment": ("synced", "2026-50002"),
    }
    [payment] = sent_entries(fake_economic, "supplierPayments")
    assert payment["contraAccount"] == {"accountNumber": 5820}
    assert (payment["amount"], payment["date"]) == (Decimal("1300.00"), "2026-11-20")
    # The changed amount updated the invoice voucher in place.
    [entry] = fake_economic.draft_vouchers()["2026-50001"]
    assert entry.data["amount"] == Decimal("-1300.00")
    assert fake_economic.records_with_key(rows["invoice"].idempotency_key) == 1
