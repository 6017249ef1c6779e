"""Procountor particulars: tokens, payroll per period, dimensions, refusals that need a person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import (
    AuthenticationError,
    NeedsPersonError,
    RecordStatus,
    TransientError,
)
from connectors.procountor.client import ProcountorConnector
from connectors.procountor.receipts import WITHDRAWN_NOTE
from sync.config import IntegrationConfig
from sync.errors import FailureKind, NotSendable, classify
from sync.kinds import build_request
from sync.vouchers import config_mappings, idempotency_key
from tests.connectors.harness import invoice_request
from tests.fakes.procountor_server import ProcountorFake, build_connector

PAYROLL: dict[str, Any] = {
    "run": "R-2026-11",
    "date": "2026-11-25",
    "lines": [
        {
            "account": "5000",
            "amount": "10000.00",
            "period": "2026-11",
            "cost_center": "CC-100",
            "cost_unit": "CU-1",
            "text": "Salaries November",
        },
        {
            "account": "6130",
            "amount": "1500.00",
            "period": "2026-11",
            "cost_center": "CC-100",
            "text": "Pension November",
        },
        {"account": "2939", "amount": "-11500.00", "period": "2026-11", "text": "Liabilities"},
        # corrections of October: booked in October
        {
            "account": "5000",
            "amount": "250.00",
            "period": "2026-10",
            "cost_center": "CC-200",
            "text": "Overtime correction",
        },
        {"account": "2939", "amount": "-250.00", "period": "2026-10", "text": "Liabilities corr."},
    ],
}


@pytest.fixture
async def fake() -> AsyncIterator[ProcountorFake]:
    server = ProcountorFake()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connector(fake: ProcountorFake) -> AsyncIterator[ProcountorConnector]:
    conn = build_connector(fake)
    yield conn
    await conn.aclose()


def _cfg() -> IntegrationConfig:
    return IntegrationConfig(
        name="procountor-fi",
        kind="procountor",
        client_id="x",
        client_secret="x",
        api_key="x",
        dimensions={"cost_center": 87540, "cost_unit": 87541},
    )


def _payroll_requests(data: dict[str, Any]) -> list[Any]:
    cfg = _cfg()
    periods = sorted({line["period"] for line in data["lines"]})
    return [
        build_request(
            cfg=cfg,
            lookup=config_mappings(cfg),
            doc_kind="payroll_run",
            doc_data=data,
            posting_kind="journal",
            period=period,
            key=idempotency_key(cfg.name, "payroll", "payroll_run", data["run"], f"journal:{period}"),
        )
        for period in periods
    ]


def _posts(fake: ProcountorFake) -> int:
    return sum(1 for m, p in fake.calls if m == "POST" and p == "/api/ledgerreceipts")


def _request(key: str, **overrides: Any) -> Any:
    return replace(invoice_request(key, currency="EUR"), **overrides)


async def test_token_is_cached_until_it_expires(fake: ProcountorFake) -> None:
    now = [1000.0]
    conn = build_connector(fake, clock=lambda: now[0])
    try:
        for n in range(3):
            await conn.create(_request(f"LO-TOKEN000{n}"))
        assert fake.token_requests == 1
        now[0] += 3600 - 30  # inside the renewal margin before expiry
        await conn.create(_request("LO-TOKEN0009"))
        assert fake.token_requests == 2
    finally:
        await conn.aclose()


async def test_a_401_renews_the_token_once_and_repeats_the_call(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    await connector.create(_request("LO-RENEW0001"))
    fake.revoke_tokens()
    result = await connector.create(_request("LO-RENEW0002"))
    assert result.external_ref
    assert fake.token_requests == 2
    assert len(fake.receipts_with_key("LO-RENEW0002")) == 1


async def test_a_401_after_renewing_is_an_authentication_error_not_a_loop(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    await connector.create(_request("LO-DENIED001"))

    class Refusing(set[str]):
        def add(self, _item: str) -> None:  # tokens are issued but never accepted
            return None

    fake.tokens = Refusing()
    before_tokens, before_posts = fake.token_requests, _posts(fake)
    with pytest.raises(AuthenticationError) as err:
        await connector.create(_request("LO-DENIED002"))
    assert fake.token_requests == before_tokens + 1  # renewed exactly once
    assert _posts(fake) == before_posts + 2  # the call and its one repeat
    assert fake.client_secret not in err.value.message and fake.api_key not in err.value.message


async def test_wrong_credentials_need_a_person_and_are_never_repeated(fake: ProcountorFake) -> None:
    conn = build_connector(fake, api_key="not-the-key")
    try:
        with pytest.raises(AuthenticationError) as err:
            await conn.create(_request("LO-BADKEY001"))
    finally:
        await conn.aclose()
    assert "not-the-key" not in err.value.message and "not-the-key" not in repr(conn)
    assert classify(err.value, during_write=True).kind is FailureKind.NEEDS_PERSON
    assert fake.calls == []


async def test_payroll_corrections_go_to_their_own_period_and_each_receipt_sums_to_zero(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    requests = _payroll_requests(PAYROLL)
    assert [r.period for r in requests] == ["2026-10", "2026-11"]
    refs = [(await connector.create(r)).external_ref for r in requests]
    receipts = [fake.receipts[int(ref)] for ref in refs]
    assert len(fake.receipts) == 2
    october, november = receipts
    assert october["receiptDate"] == "2026-10-31"  # a correction books on the period's last day
    assert november["receiptDate"] == "2026-11-25"
    for receipt in receipts:
        values = [Decimal(t["accountingValue"]) for t in receipt["transactions"]]
        assert sum(values, Decimal(0)) == 0
        assert receipt["type"] == "JOURNAL" and receipt["status"] == "UNFINISHED"
    assert [t["account"] for t in october["transactions"]] == ["5000", "2939"]
    assert october["transactions"][0]["dimensionItemValues"] == [
        {"dimensionId": 87540, "itemId": 136935, "value": Decimal("250.00")}
    ]
    salaries = november["transactions"][0]
    assert {(d["dimensionId"], d["itemId"]) for d in salaries["dimensionItemValues"]} == {
        (87540, 136934),
        (87541, 136940),
    }
    assert november["transactions"][2]["dimensionItemValues"] == []


async def test_a_period_that_does_not_balance_is_refused_before_anything_is_sent(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    data = dict(
        PAYROLL,
        lines=[
            *PAYROLL["lines"],
            {"account": "5000", "amount": "10.00", "period": "2026-10", "text": "stray"},
        ],
    )
    october = _payroll_requests(data)[0]
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(october)
    assert err.value.code == "unbalanced"
    assert _posts(fake) == 0


async def test_an_unknown_cost_center_needs_a_person(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    data = dict(
        PAYROLL,
        lines=[
            dict(line, cost_center="CC-999") if line.get("cost_center") else line for line in PAYROLL["lines"]
        ],
    )
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_payroll_requests(data)[0])
    assert err.value.code == "dimension_item_not_found"
    assert "CC-999" in err.value.message
    assert _posts(fake) == 0


async def test_a_test_company_is_refused_with_its_reason_and_not_retried(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    # The source flags its own test company: the request is never built.
    with pytest.raises(NotSendable) as not_sent:
        _payroll_requests(dict(PAYROLL, company_is_test=True))
    assert not_sent.value.code == "test_company"
    assert classify(not_sent.value, during_write=False).kind is FailureKind.NEEDS_PERSON
    # The ledger marks the company as a test company: refused once, nothing repeats it.
    fake.company_is_test = True
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_payroll_requests(PAYROLL)[0])
    assert err.value.code == "test_company"
    assert "test company" in err.value.message
    assert _posts(fake) == 1
    assert classify(err.value, during_write=True).kind is FailureKind.NEEDS_PERSON
    assert fake.receipts == {}


async def test_a_blocked_group_is_refused_with_its_reason(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    fake.blocked_group = True
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_request("LO-BLOCKED01"))
    assert err.value.code == "blocked_group"
    assert err.value.message == "company: The user group of this API user is blocked."
    assert len(fake.calls) == 1


async def test_validation_errors_read_field_colon_message(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_request("LO-BADACC01", account="9999"))
    assert err.value.message == (
        "transactions[0].account: Account 9999 does not exist in the chart of accounts."
    )
    assert err.value.field == "transactions[0].account"


async def test_update_reads_the_current_version_first(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    created = await connector.create(_request("LO-VERSION01"))
    receipt = fake.receipts[int(created.external_ref)]
    receipt["version"] = "changed-by-someone-in-procountor"
    await connector.update(created.external_ref, _request("LO-VERSION01", amount=Decimal("99.95")))
    values = [Decimal(t["accountingValue"]) for t in fake.receipts[int(created.external_ref)]["transactions"]]
    assert values == [Decimal("99.95"), Decimal("-99.95")]
    assert fake.receipts[int(created.external_ref)]["name"].startswith("LO-VERSION01")


async def test_a_version_conflict_is_transient(fake: ProcountorFake, connector: ProcountorConnector) -> None:
    created = await connector.create(_request("LO-CONFLICT1"))
    fake.race_next_put = True  # someone saves it between our read and our write
    with pytest.raises(TransientError) as err:
        await connector.update(created.external_ref, _request("LO-CONFLICT1"))
    assert err.value.code == "conflict"


async def test_find_pages_through_the_receipts_of_the_day(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    for n in range(55):  # more than one page of 50
        await connector.create(_request(f"LO-PAGE{n:05d}"))
    await connector.create(_request("LO-PAGE00099", date=date(2026, 11, 3)))
    found = await connector.find(_request("LO-PAGE00054"))
    assert found is not None
    assert fake.receipts[int(found.external_ref)]["name"].startswith("LO-PAGE00054")
    assert await connector.find(_request("LO-PAGE00099")) is None  # another day


async def test_statuses(fake: ProcountorFake, connector: ProcountorConnector) -> None:
    req = _request("LO-STATUS001")
    ref = (await connector.create(req)).external_ref
    assert await connector.status(ref, req) is RecordStatus.DRAFT
    fake.receipts[int(ref)]["status"] = "INVALIDATED"  # voided by a person: hands off
    assert await connector.status(ref, req) is RecordStatus.BOOKED
    assert await connector.status("1", req) is RecordStatus.MISSING


async def test_a_bill_is_a_balanced_journal_with_the_creditor_account(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    ref = (await connector.create(_request("LO-BILL00001"))).external_ref
    receipt = fake.receipts[int(ref)]
    assert [(t["account"], Decimal(t["accountingValue"])) for t in receipt["transactions"]] == [
        ("2800", Decimal("1250.00")),
        ("2871", Decimal("-1250.00")),
    ]
    assert receipt["name"] == "LO-BILL00001 Kontorland invoice INV-1"
    payment = _request("LO-PAY000001", kind="payment", account="1910")
    ref = (await connector.create(payment)).external_ref
    assert [
        (t["account"], Decimal(t["accountingValue"])) for t in fake.receipts[int(ref)]["transactions"]
    ] == [("2871", Decimal("1250.00")), ("1910", Decimal("-1250.00"))]


async def test_a_bill_in_another_currency_is_refused(connector: ProcountorConnector) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_request("LO-CURRENCY1", currency="DKK"))
    assert err.value.code == "currency"


def test_from_settings_names_missing_keys_and_keeps_secrets_out_of_repr() -> None:
    with pytest.raises(ValueError, match="api_key"):
        ProcountorConnector.from_settings("procountor-fi", {"client_id": "a", "client_secret": "b"})
    conn = ProcountorConnector.from_settings(
        "procountor-fi",
        {"client_id": "id-1", "client_secret": "s3cr3t", "api_key": "k3y", "dimensions": {"cost_center": 1}},
    )
    assert "s3cr3t" not in repr(conn) and "k3y" not in repr(conn)
    assert conn.supports("journal") and not conn.supports("relation")


async def test_a_withdrawn_receipt_is_invalidated_and_reads_as_missing(
    fake: ProcountorFake, connector: ProcountorConnector
) -> None:
    # The API deletes no ledger receipt: ours is marked in its notes, then invalidated.
    req = _request("LO-WITHDRAW1")
    ref = (await connector.create(req)).external_ref
    await connector.delete(ref, req)
    receipt = fake.receipts[int(ref)]
    assert receipt["status"] == "INVALIDATED" and WITHDRAWN_NOTE in receipt["accountantsNotes"]
    assert ("PUT", f"/api/ledgerreceipts/{ref}/invalidate") in fake.calls
    assert not any(method == "DELETE" for method, _ in fake.calls)
    assert await connector.status(ref, req) is RecordStatus.MISSING
    assert await connector.find(req) is None  # paid again later: a new receipt is made
