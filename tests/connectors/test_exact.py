"""Exact Online particulars: token rotation, pacing, journals, relations, XML, connect."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from lxml import etree
from sqlalchemy import select

from bot.connect import ConnectError, connect_exact
from connectors.base import (
    Address,
    BookedError,
    NeedsPersonError,
    PostingRequest,
    RateLimitedError,
    RecordExistsError,
    RecordStatus,
    RelationRecord,
    TransientError,
    UnknownOutcomeError,
)
from connectors.exact import exact_xml
from connectors.exact.client import ExactConnector
from storage.credentials import (
    SECRET_KEY_ENV,
    CredentialUnreadable,
    DatabaseTokenStore,
    SecretKeyError,
    secret_key_from_env,
)
from storage.db import connect
from storage.models import Credential
from sync.config import IntegrationConfig
from sync.kinds import build_request
from sync.vouchers import config_mappings, idempotency_key
from tests.connectors.harness import invoice_request
from tests.fakes.exact_server import ExactFake, MemoryTokenStore, build_connector


class ManualTime:
    """Scaled time taken to the limit: sleeping moves the clock at once, nothing waits."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        self.slept += max(0.0, seconds)
        await asyncio.sleep(0)  # ok-sleep: the manual clock's sleep only yields the loop once


@pytest.fixture
def manual() -> ManualTime:
    return ManualTime()


@pytest.fixture
async def fake(manual: ManualTime) -> AsyncIterator[ExactFake]:
    server = ExactFake(divisions={101: "Books B.V.", 202: "Other B.V."}, time_source=manual)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connector(fake: ExactFake) -> AsyncIterator[ExactConnector]:
    conn = build_connector(fake, MemoryTokenStore(), refresh_token=fake.issue_refresh_token())
    yield conn
    await conn.aclose()


def _invoice(key: str, **overrides: Any) -> PostingRequest:
    return replace(invoice_request(key, currency="EUR"), **overrides)


PAYROLL: dict[str, Any] = {
    "run": "R-2026-11",
    "date": "2026-11-25",
    "lines": [
        {
            "account": "4000",
            "amount": "8000.00",
            "period": "2026-11",
            "cost_center": "CC-100",
            "cost_unit": "CU-1",
            "text": "Salaries",
        },
        {"account": "4800", "amount": "-8000.00", "period": "2026-11", "text": "Liabilities"},
        {
            "account": "4000",
            "amount": "120.00",
            "period": "2026-10",
            "cost_center": "CC-200",
            "text": "Correction",
        },
        {"account": "4800", "amount": "-120.00", "period": "2026-10", "text": "Liabilities"},
    ],
}


def _journals(data: dict[str, Any]) -> list[PostingRequest]:
    cfg = IntegrationConfig(name="exact-nl", kind="exact", division=101)
    return [
        build_request(
            cfg=cfg,
            lookup=config_mappings(cfg),
            doc_kind="payroll_run",
            doc_data=data,
            posting_kind="journal",
            period=period,
            key=idempotency_key("exact-nl", "payroll", "payroll_run", data["run"], f"journal:{period}"),
        )
        for period in sorted({line["period"] for line in data["lines"]})
    ]


# -- tokens ------------------------------------------------------------------------------
async def test_a_rotated_refresh_token_survives_a_restart(fake: ExactFake, sqlite_url: str) -> None:
    key = Fernet.generate_key()
    first_token = fake.issue_refresh_token()
    db = connect(sqlite_url)
    first = build_connector(fake, DatabaseTokenStore(db, "exact-nl", key), refresh_token=first_token)
    try:
        await first.create(_invoice("LO-RESTART01"))
    finally:
        await first.aclose()
        await db.dispose()
    assert not fake.refresh_token_valid(first_token)  # rotated: the config's token is spent

    # A new process: new engine, same database and key, the stale token still in the config.
    db = connect(sqlite_url)
    try:
        store = DatabaseTokenStore(db, "exact-nl", key)
        stored = await store.get("refresh_token")
        assert stored and fake.refresh_token_valid(stored)
        async with db.sessions() as s:
            raw = await s.scalar(select(Credential.value).where(Credential.name == "refresh_token"))
        assert raw and stored not in raw  # encrypted at rest
        second = build_connector(fake, store, refresh_token=first_token)
        try:
            result = await second.create(_invoice("LO-RESTART02"))
        finally:
            await second.aclose()
        assert result.external_ref
        newest = await store.get("refresh_token")
        assert newest != stored and fake.refresh_token_valid(newest or "")
    finally:
        await db.dispose()


async def test_the_token_is_stored_before_it_is_used(fake: ExactFake) -> None:
    class FailingOnce(MemoryTokenStore):
        fail = True

        async def set(self, name: str, value: str, detail: dict[str, Any] | None = None) -> None:
            if self.fail:
                self.fail = False
                raise OSError("disk full")
            await super().set(name, value, detail)

    store = FailingOnce()
    conn = build_connector(fake, store, refresh_token=fake.issue_refresh_token())
    try:
        with pytest.raises(TransientError) as err:
            await conn.create(_invoice("LO-STOREFAIL"))
        assert err.value.code == "token_store"
        assert fake.calls == []  # nothing went out with an unsaved token
        await conn.create(_invoice("LO-STOREFAIL"))  # the next try stores it first
        assert fake.refresh_token_valid(store.values["refresh_token"])
        assert len(fake.refreshes) == 1
    finally:
        await conn.aclose()


async def test_the_access_token_is_renewed_about_every_ten_minutes_not_more(
    fake: ExactFake, manual: ManualTime, connector: ExactConnector
) -> None:
    for n in range(5):
        await connector.create(_invoice(f"LO-ACCESS{n:03d}"))
        manual.now += 100  # 8+ minutes in all
    assert len(fake.refreshes) == 1
    manual.now += 200
    await connector.create(_invoice("LO-ACCESS999"))
    assert len(fake.refreshes) == 2
    assert fake.refreshes[1] - fake.refreshes[0] >= 540


async def test_a_revoked_access_token_is_renewed_once(fake: ExactFake, connector: ExactConnector) -> None:
    await connector.create(_invoice("LO-REVOKE001"))
    fake.revoke_access_tokens()
    await connector.create(_invoice("LO-REVOKE002"))
    assert len(fake.refreshes) == 2


def test_from_settings_needs_a_token_store() -> None:
    with pytest.raises(ValueError, match="token store"):
        ExactConnector.from_settings("exact-nl", {"client_id": "a", "client_secret": "b", "division": 101})
    conn = ExactConnector.from_settings(
        "exact-nl",
        {
            "client_id": "a",
            "client_secret": "s3cr3t",
            "division": 101,
            "refresh_token": "rt-s3cr3t",
            "token_store": MemoryTokenStore(),
        },
    )
    assert "s3cr3t" not in repr(conn)


# -- pacing ------------------------------------------------------------------------------
async def test_calls_beyond_the_minute_allowance_wait_instead_of_getting_429(
    fake: ExactFake, manual: ManualTime, connector: ExactConnector
) -> None:
    start = manual.now
    for n in range(150):  # 150 entries + 2 look-ups: three minutes of allowance
        await connector.create(_invoice(f"LO-PACE{n:05d}"))
    div = fake.division(101)
    assert div.rejected == 0
    assert div.calls == 152
    assert [w.count for w in div.windows] == [60, 60, 32]
    assert manual.now - start >= 120  # it waited for two resets
    assert connector.pacer.waited >= 118


async def test_a_429_anyway_is_rate_limited_and_the_next_call_waits(
    fake: ExactFake, manual: ManualTime, connector: ExactConnector
) -> None:
    await connector.create(_invoice("LO-OTHER0001"))
    # Another client used up this minute without our connector seeing it.
    div = fake.division(101)
    assert div.minute is not None
    div.minute.count = fake.minutely_limit
    with pytest.raises(RateLimitedError) as err:
        await connector.create(_invoice("LO-OTHER0002"))
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 60
    assert div.rejected == 1
    await connector.create(_invoice("LO-OTHER0002"))  # waits for the reset first
    assert div.rejected == 1


async def test_a_used_up_day_is_refused_without_calling(manual: ManualTime) -> None:
    fake = ExactFake(time_source=manual, daily_limit=4)
    await fake.start()
    conn = build_connector(fake, MemoryTokenStore(), refresh_token=fake.issue_refresh_token())
    try:
        await conn.create(_invoice("LO-DAY000001"))  # GL + supplier + entry
        await conn.create(_invoice("LO-DAY000002"))
        calls = len(fake.calls)
        with pytest.raises(RateLimitedError) as err:
            await conn.create(_invoice("LO-DAY000003"))
        assert err.value.code == "daily_limit"
        assert err.value.retry_after and err.value.retry_after > 3600
        assert len(fake.calls) == calls and fake.division().rejected == 0
    finally:
        await conn.aclose()
        await fake.stop()


async def test_a_long_wait_is_handed_back_to_the_worker(fake: ExactFake) -> None:
    conn = build_connector(fake, MemoryTokenStore(), refresh_token=fake.issue_refresh_token(), max_wait=5.0)
    try:
        for n in range(58):
            await conn.create(_invoice(f"LO-HAND{n:05d}"))
        with pytest.raises(RateLimitedError) as err:
            await conn.create(_invoice("LO-HAND99999"))
        assert err.value.retry_after and err.value.retry_after > 5
        assert fake.division().rejected == 0
    finally:
        await conn.aclose()


# -- entries -----------------------------------------------------------------------------
async def test_payroll_journals_per_period_balance_and_carry_cost_centres(
    fake: ExactFake, connector: ExactConnector
) -> None:
    refs = [(await connector.create(r)).external_ref for r in _journals(PAYROLL)]
    october, november = (fake.entry(ref) for ref in refs)
    assert (october["FinancialYear"], october["FinancialPeriod"]) == (2026, 10)
    assert (november["FinancialYear"], november["FinancialPeriod"]) == (2026, 11)
    for entry in (october, november):
        assert sum((ln["AmountFC"] for ln in entry["_lines"]), Decimal(0)) == 0
    assert [(ln["GLAccountCode"], ln["CostCenter"], ln["CostUnit"]) for ln in november["_lines"]] == [
        ("4000", "CC-100", "CU-1"),
        ("4800", None, None),
    ]


async def test_a_draft_journal_is_replaced_and_a_processed_one_refused(
    fake: ExactFake, connector: ExactConnector
) -> None:
    october = _journals(PAYROLL)[0]
    first = await connector.create(october)
    changed = replace(october, lines=tuple(replace(ln, amount=ln.amount * 2) for ln in october.lines))
    updated = await connector.update(first.external_ref, changed)
    assert fake.records_with_key(october.idempotency_key) == 1
    assert await connector.status(updated.external_ref, changed) is RecordStatus.DRAFT
    assert fake.entry(updated.external_ref)["_lines"][0]["AmountFC"] == Decimal("240.00")
    fake.book(updated.external_ref)
    assert await connector.status(updated.external_ref, changed) is RecordStatus.BOOKED
    with pytest.raises(BookedError):
        await connector.update(updated.external_ref, october)
    assert fake.records_with_key(october.idempotency_key) == 1


async def test_a_lost_journal_repost_is_found_by_its_key(fake: ExactFake, connector: ExactConnector) -> None:
    october = _journals(PAYROLL)[0]
    first = await connector.create(october)
    fake.timeouts_after_write = 1  # the old one is deleted, the new post loses its answer
    with pytest.raises(UnknownOutcomeError):
        await connector.update(first.external_ref, october)
    # The engine asks again with the old reference: the connector finds the new entry.
    status = await connector.status(first.external_ref, october)
    assert status is RecordStatus.DRAFT
    found = await connector.find(october)
    assert found is not None and found.external_ref != first.external_ref
    assert fake.records_with_key(october.idempotency_key) == 1


async def test_unbalanced_journal_is_refused_before_sending(
    fake: ExactFake, connector: ExactConnector
) -> None:
    data = dict(
        PAYROLL, lines=[*PAYROLL["lines"], {"account": "4000", "amount": "1.00", "period": "2026-10"}]
    )
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_journals(data)[0])
    assert err.value.code == "unbalanced" and fake.calls == []


async def test_an_unknown_supplier_needs_a_person(connector: ExactConnector) -> None:
    from connectors.base import Party

    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_invoice("LO-NOSUPP01", supplier=Party("9998", "Nobody")))
    assert err.value.code == "supplier_not_found" and "9998" in err.value.message


async def test_exact_error_text_is_passed_on(connector: ExactConnector) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await connector.create(_invoice("LO-COSTCTR1", department="CC-404"))
    assert err.value.message == "Line 1: Cost center CC-404 does not exist."


# -- relations ---------------------------------------------------------------------------
def _relation(key: str, number: str = "10001", **overrides: Any) -> PostingRequest:
    rel = RelationRecord(
        "debtor",
        number,
        "Acme B.V.",
        "NL001234567B01",
        "ap@acme.nl",
        Address("Main 1", "3511 AB", "Utrecht", "NL"),
    )
    return PostingRequest(
        kind="relation",
        idempotency_key=key,
        company_key="exact-nl",
        date=invoice_request(key).date,
        relation=replace(rel, **overrides),
    )


async def test_relations_insert_refuse_an_existing_code_and_update(
    fake: ExactFake, connector: ExactConnector
) -> None:
    created = await connector.create(_relation("LO-REL00001"))
    with pytest.raises(RecordExistsError) as err:
        await connector.create(_relation("LO-REL00002"))
    assert "10001" in err.value.message
    found = await connector.find(_relation("LO-REL00001"))
    assert found is not None and found.external_ref == created.external_ref
    assert await connector.find(_relation("LO-REL00002")) is None  # not ours
    await connector.update(created.external_ref, _relation("LO-REL00001", name="Acme Holding"))
    assert fake.division(101).accounts[created.external_ref]["Name"] == "Acme Holding"
    assert await connector.status(created.external_ref, _relation("x")) is RecordStatus.DRAFT


# -- eExact XML --------------------------------------------------------------------------
DEBTORS = [
    RelationRecord(
        "debtor",
        "10001",
        "Acme B.V.",
        "NL001234567B01",
        "ap@acme.nl",
        Address("Main 1", "3511 AB", "Utrecht", "nl"),
    ),
    RelationRecord("debtor", "10002", "Café & Co <Utrecht>", email="info@cafe.nl"),
    RelationRecord("creditor", "20001", "Supplies Ltd"),
]


def test_the_xml_file_validates_against_exacts_schema() -> None:
    xml = exact_xml.write_accounts_xml(DEBTORS)
    schema = etree.XMLSchema(etree.parse(str(exact_xml.DEFAULT_SCHEMA)))
    doc = etree.fromstring(xml)
    assert schema.validate(doc), schema.error_log
    accounts = doc.findall("Accounts/Account")
    assert [(a.get("code"), a.get("status"), a[0].tag) for a in accounts] == [
        ("10001", "C", "Name"),
        ("10002", "C", "Name"),
        ("20001", "A", "Name"),
    ]
    assert accounts[1].findtext("Name") == "Café & Co <Utrecht>"
    assert accounts[0].find("Address/Country").get("code") == "NL"


def test_a_bad_row_fails_the_whole_file_and_is_named() -> None:
    bad = [*DEBTORS[:1], RelationRecord("debtor", "10003", "   "), *DEBTORS[1:]]
    with pytest.raises(exact_xml.ExactXmlError) as err:
        exact_xml.write_accounts_xml(bad)
    assert err.value.row == 2 and "Row 2 (number 10003" in str(err.value)
    assert "nothing was exported" in str(err.value)


def test_a_row_the_schema_refuses_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    original = exact_xml.account_element

    def broken(relation: RelationRecord) -> Any:
        node = original(relation)
        if relation.number == "10002":
            node.set("status", "X")  # not one of "", A, S, P, C
        return node

    monkeypatch.setattr(exact_xml, "account_element", broken)
    with pytest.raises(exact_xml.ExactXmlError) as err:
        exact_xml.write_accounts_xml(DEBTORS)
    assert err.value.row == 2 and "does not match Exact's schema" in str(err.value)
    assert "status" in str(err.value)


def test_a_missing_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(exact_xml.ExactXmlError, match="schema was not found"):
        exact_xml.write_accounts_xml(DEBTORS, schema_path=tmp_path / "nope.xsd")


async def test_the_upload_answer_gives_an_outcome_per_row(fake: ExactFake, connector: ExactConnector) -> None:
    xml = await asyncio.to_thread(exact_xml.write_accounts_xml, DEBTORS)
    answer = await connector.upload_xml("Accounts", xml)
    outcomes = exact_xml.parse_upload_answer(answer)
    assert [(o.key, o.type, o.ok) for o in outcomes] == [
        ("10001", exact_xml.MessageType.SUCCESS, True),
        ("10002", exact_xml.MessageType.SUCCESS, True),
        ("20001", exact_xml.MessageType.SUCCESS, True),
    ]
    parsed = exact_xml.parse_upload_answer(
        '<?xml version="1.0"?><eExact><Messages>'
        '<Message type="0"><Topic code="Accounts" node="Account"><Data keyAlt="10009"/></Topic>'
        "<Description>Name: mandatory</Description></Message>"
        '<Message type="3"><Topic code="Accounts" node="Account"/>'
        "<Description>File rejected</Description></Message></Messages></eExact>"
    )
    assert [(o.key, o.type, o.ok, o.description) for o in parsed] == [
        ("10009", exact_xml.MessageType.ERROR, False, "Name: mandatory"),
        ("", exact_xml.MessageType.FATAL, False, "File rejected"),
    ]


# -- credentials -------------------------------------------------------------------------
def test_the_secret_key_comes_from_the_environment() -> None:
    with pytest.raises(SecretKeyError, match=SECRET_KEY_ENV):
        secret_key_from_env({})
    with pytest.raises(SecretKeyError, match="malformed") as err:
        secret_key_from_env({SECRET_KEY_ENV: "not-a-key-at-all"})
    assert "not-a-key-at-all" not in str(err.value)
    key = Fernet.generate_key()
    assert secret_key_from_env({SECRET_KEY_ENV: key.decode()}) == key


async def test_the_token_store_keeps_integrations_apart_and_needs_its_key(sqlite_url: str) -> None:
    db = connect(sqlite_url)
    try:
        key = Fernet.generate_key()
        one, two = DatabaseTokenStore(db, "exact-a", key), DatabaseTokenStore(db, "exact-b", key)
        await one.set("refresh_token", "rt-aaa", {"division": 1})
        await one.set("refresh_token", "rt-aaa-2", {"division": 1})  # replaced in place
        await two.set("refresh_token", "rt-bbb")
        assert (await one.get("refresh_token"), await two.get("refresh_token")) == ("rt-aaa-2", "rt-bbb")
        assert await one.get("division") is None
        assert "rt-" not in repr(one) and key.decode() not in repr(one)
        stranger = DatabaseTokenStore(db, "exact-a", Fernet.generate_key())
        with pytest.raises(CredentialUnreadable) as err:
            await stranger.get("refresh_token")
        assert SECRET_KEY_ENV in str(err.value) and "rt-aaa" not in str(err.value)
    finally:
        await db.dispose()


def test_a_repeated_number_fails_the_file() -> None:
    with pytest.raises(exact_xml.ExactXmlError, match=r"Row 4 .* repeats the number of row 1"):
        exact_xml.write_accounts_xml([*DEBTORS, replace(DEBTORS[0], name="Acme again")])


# -- connect -----------------------------------------------------------------------------
async def _connect(fake: ExactFake, cfg: IntegrationConfig, store: Any) -> str:
    """Run connect_exact with a 'browser' that opens the printed address."""
    browser: list[asyncio.Task[Any]] = []
    printed: list[str] = []

    async def open_in_browser(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=True) as client:
            await client.get(url)

    def printer(line: str) -> None:
        printed.append(line)
        if re.match(r"^https?://", line):
            browser.append(asyncio.get_running_loop().create_task(open_in_browser(line)))

    try:
        return await connect_exact(cfg, store, open_url_printer=printer, port=0, wait_seconds=5)
    finally:
        await asyncio.gather(*browser, return_exceptions=True)
        assert any("/api/oauth2/auth?" in line for line in printed)


async def test_connect_links_one_administration_and_refuses_a_second(fake: ExactFake) -> None:
    cfg = IntegrationConfig(
        name="exact-nl",
        kind="exact",
        base_url=fake.base_url,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
    )
    store = MemoryTokenStore()
    message = await _connect(fake, cfg, store)
    assert message == "Linked exact-nl to Exact Online administration 101 (Books B.V.)."
    assert store.values["division"] == "101"
    linked = store.values["refresh_token"]
    assert fake.refresh_token_valid(linked)

    # The stored link works for the connector, without any token or division in the config.
    conn = ExactConnector(
        "exact-nl",
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        token_store=store,
        base_url=fake.base_url,
        clock=fake.time.clock,
        sleep=fake.time.sleep,
    )
    try:
        assert (await conn.create(_invoice("LO-LINKED01"))).external_ref
    finally:
        await conn.aclose()

    fake.login_division = 202  # the person signs in to another administration
    with pytest.raises(ConnectError) as err:
        await _connect(fake, cfg, store)
    text = str(err.value)
    assert "202 (Other B.V.)" in text and "linked to administration 101" in text
    assert store.values["division"] == "101"
    assert fake.client_secret not in text


async def test_connect_refuses_another_division_than_configured(fake: ExactFake) -> None:
    cfg = IntegrationConfig(
        name="exact-nl",
        kind="exact",
        base_url=fake.base_url,
        division=202,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
    )
    store = MemoryTokenStore()
    with pytest.raises(ConnectError, match="linked to administration 202"):
        await _connect(fake, cfg, store)
    assert store.values == {}
