"""Pure parts: planner hashes, backoff policy, fingerprints, config and environment errors."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from bot.config import ConfigError, load_environment, parse_config
from sync.documents import validate_batch
from sync.kinds.bill import BillData
from sync.kinds.bill import plan as plan_bill
from sync.kinds.payroll import PayrollRunData
from sync.kinds.payroll import plan as plan_payroll
from sync.planner import Eligibility
from sync.policy import RetryPolicy, fingerprint
from tests.support import bill


def bill_data(**changes: object) -> BillData:
    data = bill()["data"]
    data.update(changes)
    return BillData.model_validate(data)


def invoice_hash(b: BillData) -> str:
    return plan_bill(b, Eligibility())[0].desired_hash


@pytest.mark.parametrize(
    "field,value",
    [
        ("amount", "1300.00"),
        ("category", "Software"),
        ("department", "Sales"),
        ("due_date", "2027-01-01"),
    ],
)
def test_changes_that_matter_change_the_invoice(field: str, value: str) -> None:
    assert invoice_hash(bill_data()) != invoice_hash(bill_data(**{field: value}))


def test_amount_written_differently_is_the_same_invoice() -> None:
    assert invoice_hash(bill_data(amount="1250.00")) == invoice_hash(bill_data(amount="1250"))


def test_paid_bill_plans_invoice_and_payment_unapproved_plans_nothing() -> None:
    paid = bill_data(paid={"date": "2026-11-20", "amount": "1250.00"})
    assert [p.kind for p in plan_bill(paid, Eligibility())] == ["invoice", "payment"]
    assert plan_bill(bill_data(approved=False), Eligibility()) == []
    waiting = plan_bill(bill_data(), Eligibility(auto_transfer=False))
    assert waiting[0].wait_reason and "automatic transfer" in waiting[0].wait_reason


def test_payroll_corrections_plan_one_journal_per_period() -> None:
    run = PayrollRunData.model_validate(
        {
            "run": "2026-11",
            "date": "2026-11-25",
            "lines": [
                {"account": "4000", "amount": "1000.00", "period": "2026-11"},
                {"account": "6900", "amount": "-1000.00", "period": "2026-11"},
                {"account": "4000", "amount": "50.00", "period": "2026-10"},
                {"account": "6900", "amount": "-50.00", "period": "2026-10"},
            ],
        }
    )
    assert [p.slot for p in plan_payroll(run, Eligibility())] == ["journal:2026-10", "journal:2026-11"]


def test_backoff_grows_within_jitter_bounds_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=30, max_seconds=600, jitter=0.2, max_attempts=5)
    rng = random.Random(7)
    for attempt in range(1, 10):
        lo, hi = policy.bounds(attempt)
        for _ in range(50):
            assert lo <= policy.delay(attempt, rng=rng) <= hi
    assert policy.bounds(1) == (24, 36)
    assert policy.bounds(9)[1] == 720  # capped at 600 plus jitter
    assert policy.delay(1, retry_after=120, rng=rng) >= 120
    assert not policy.gives_up(4) and policy.gives_up(5)


def test_fingerprint_groups_by_message_not_by_document() -> None:
    a = fingerprint("dk", "account_not_found", "Account 2800 does not exist.", ("INV-1",))
    b = fingerprint("dk", "account_not_found", "Account  2800 does not exist.", ("INV-2",))
    c = fingerprint("dk", "account_not_found", "Account 2810 does not exist.", ())
    d = fingerprint("dk", "x", "Voucher for INV-1 is locked", ("INV-1",))
    e = fingerprint("dk", "x", "Voucher for INV-2 is locked", ("INV-2",))
    assert a == b and a != c and d == e


def test_amounts_stay_decimal_and_floats_are_not_invented() -> None:
    event = bill()
    event["data"]["amount"] = Decimal("0.10") + Decimal("0.20")
    [valid], errors = validate_batch(event, {"books-dk"})
    assert not errors
    assert valid.stored_data()["amount"] == "0.30"
    event["data"]["amount"] = "12.345"
    _, errors = validate_batch(event, {"books-dk"})
    assert errors[0].field == "data.amount" and "2 decimals" in errors[0].message


def test_config_unknown_key_and_non_number_mapping_name_the_key() -> None:
    base = '[[integrations]]\nname = "dk"\nkind = "sandbox"\n'
    assert parse_config(base).integrations[0].name == "dk"
    with pytest.raises(ConfigError, match=r"integrations\[dk\]\.colour: unknown key"):
        parse_config(base + 'colour = "blue"\n')
    with pytest.raises(ConfigError, match=r"mappings\.categories\.Rent"):
        parse_config(base + '[integrations.mappings.categories]\nRent = "x"\n')
    with pytest.raises(ConfigError, match=r"journal.*not used by kind 'sandbox'"):
        parse_config(base + "journal = 1\n")


def test_environment_errors_name_the_setting_and_hide_secrets() -> None:
    with pytest.raises(ConfigError) as err:
        load_environment({"SLACK_BOT_TOKEN": "secret-value-123"})
    assert str(err.value).startswith("SLACK_BOT_TOKEN:")
    assert "secret-value-123" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^PORT:"):
        load_environment({"PORT": "http"})
    env = load_environment({"DATABASE_URL": "postgresql://u@h/db"})
    assert env.database_url == "postgresql+asyncpg://u@h/db"
    assert env.sandbox


def test_history_start_date_is_parsed() -> None:
    cfg = parse_config('[[integrations]]\nname = "dk"\nkind = "sandbox"\nhistory_start = 2026-01-01\n')
    assert cfg.integrations[0].history_start == date(2026, 1, 1)
