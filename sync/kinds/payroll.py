"""A payroll run: one journal per period its lines touch (corrections book where they belong).

The only reader of a payroll run's data: its validated shape, the journals it
needs, the ledger request of each, and what a person sees of it.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import Field, StrictBool, field_validator

from connectors.base import JournalLine, PostingRequest
from storage.states import PostingKind
from sync.config import IntegrationConfig
from sync.errors import NotSendable
from sync.kinds.base import DocumentKind, Money, Period, Shape, Text, money, number_text
from sync.planner import Eligibility, PlannedPosting, content_hash, wait_reason
from sync.vouchers import MappingLookup


class PayrollLine(Shape):
    account: Annotated[str, Field(min_length=1, max_length=20)]
    amount: Money
    period: Period
    cost_center: str | None = None
    cost_unit: str | None = None
    text: Text | None = None

    _n = field_validator("account", mode="before")(number_text)


class PayrollRunData(Shape):
    run: Annotated[str, Field(min_length=1, max_length=64)]
    date: date
    company_is_test: StrictBool = False
    lines: list[PayrollLine] = Field(min_length=1, max_length=5000)

    _n = field_validator("run", mode="before")(number_text)


def plan(run: PayrollRunData, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
    """One journal per period the run's lines touch: corrections book where they belong."""
    reason = wait_reason(rules, run.date, history=history)
    periods: dict[str, list[Any]] = {}
    for line in run.lines:
        periods.setdefault(line.period, []).append(line.model_dump(mode="json"))
    return [
        PlannedPosting(
            PostingKind.JOURNAL, content_hash({"date": run.date, "lines": lines}), reason, period=period
        )
        for period, lines in sorted(periods.items())
    ]


def _period_date(period: str, run_date: date) -> date:
    """A correction books on the last day of the period it concerns."""
    year, month = (int(part) for part in period.split("-"))
    if (year, month) == (run_date.year, run_date.month):
        return run_date
    return date(year, month, calendar.monthrange(year, month)[1])


def request(
    cfg: IntegrationConfig,
    lookup: MappingLookup,
    run: PayrollRunData,
    posting_kind: str,
    period: str | None,
    key: str,
) -> PostingRequest:
    """The journal of one period of the run (a test company's payroll is never booked)."""
    if posting_kind != PostingKind.JOURNAL:
        raise NotSendable(f"A payroll_run has no {posting_kind} posting.", code="no_such_posting")
    period = period or ""
    if run.company_is_test:
        raise NotSendable(
            f"Payroll run {run.run} comes from a company marked as a test company; "
            "test payroll is not booked.",
            "test_company",
        )
    lines = tuple(
        JournalLine(
            account=line.account,
            amount=line.amount,
            text=line.text or f"Payroll {run.run}",
            dimensions={
                k: v for k, v in (("cost_center", line.cost_center), ("cost_unit", line.cost_unit)) if v
            },
        )
        for line in run.lines
        if line.period == period
    )
    return PostingRequest(
        kind=PostingKind.JOURNAL,
        idempotency_key=key,
        company_key=cfg.name,
        date=_period_date(period, run.date),
        text=f"Payroll {run.run} {period}",
        reference=run.run,
        period=period,
        lines=lines,
    )


def why_no_posting(run: PayrollRunData, posting_kind: str) -> str | None:
    """A run has only journals; the generic answer says so."""
    return None


def no_longer_needed(posting_kind: str) -> str | None:
    """A journal's period without lines is said by the generic rule (it names the period)."""
    return None


def title(data: Mapping[str, Any], external_id: str) -> str:
    """``payroll run 2026-11``."""
    return f"payroll run {data.get('run') or external_id}"


def fields(data: Mapping[str, Any], external_id: str, key: str) -> list[tuple[str, str]]:
    """A run is named by its document key; it has no single amount."""
    return [("Document", key)]


def journal_fields(data: Mapping[str, Any], posting_kind: str, period: str | None) -> list[tuple[str, str]]:
    """One period's journal in money: debit and credit totals, the difference when it does not
    balance, and the cost centres and cost units its lines carry."""
    lines = [x for x in data.get("lines") or () if isinstance(x, Mapping) and x.get("period") == period]
    amounts = [_amount(x.get("amount")) for x in lines]
    debits = sum((a for a in amounts if a > 0), Decimal(0))
    credits = -sum((a for a in amounts if a < 0), Decimal(0))
    out = [("Debits", _shown(debits)), ("Credits", _shown(credits))]
    if debits != credits:
        out.append(("Difference", _shown(abs(debits - credits))))
    for label, key in (("Cost centres", "cost_center"), ("Cost units", "cost_unit")):
        names = sorted({str(x[key]) for x in lines if x.get(key)})
        if names:
            out.append((label, ", ".join(names)))
    return out


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)  # a stored run was validated; a message must render whatever it holds


def _shown(value: Decimal) -> str:
    return money(value, None) or "—"


def has_payment(data: Mapping[str, Any]) -> bool:
    """A payroll run has no payment posting."""
    return False


KIND = DocumentKind(
    name="payroll_run",
    shape=PayrollRunData,
    plan=plan,
    request=request,
    why_no_posting=why_no_posting,
    no_longer_needed=no_longer_needed,
    title=title,
    fields=fields,
    summary=title,
    has_payment=has_payment,
    posting_fields=journal_fields,
)
