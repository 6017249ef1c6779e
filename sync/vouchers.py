"""Document + integration settings -> the :class:`PostingRequest` a connector writes.

Mappings turn the source's words (a bill's category, department) into ledger
numbers. A missing mapping is a "needs a person" failure naming the value.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable
from datetime import date
from typing import Any

from connectors.base import JournalLine, Party, PostingRequest
from storage.states import PostingKind
from sync.config import IntegrationConfig
from sync.documents import DATA_MODELS, BillData, PayrollRunData
from sync.errors import MappingMissing, NotSendable

#: (what, source value) -> ledger number or None; the database's mappings come first
MappingLookup = Callable[[str, str], int | None]


def idempotency_key(integration: str, source: str, kind: str, external_id: str, slot: str) -> str:
    """A short, stable key stored in the ledger record so a retry can find it."""
    raw = "\x1f".join((integration, source, kind, external_id, slot))
    return "LO-" + hashlib.sha256(raw.encode()).hexdigest()[:16].upper()


def config_mappings(cfg: IntegrationConfig) -> MappingLookup:
    """Look mappings up in the config file only."""
    tables = {
        "category": cfg.mappings.categories,
        "department": cfg.mappings.departments,
        "payment-method": cfg.mappings.payment_methods,
    }

    def lookup(what: str, value: str) -> int | None:
        return tables.get(what, {}).get(value)

    return lookup


def _mapped(lookup: MappingLookup, cfg: IntegrationConfig, what: str, value: str) -> str:
    number = lookup(what, value)
    if number is None:
        raise MappingMissing(what, value, cfg.name)
    return str(number)


def _period_date(period: str, run_date: date) -> date:
    """A correction books on the last day of the period it concerns."""
    year, month = (int(part) for part in period.split("-"))
    if (year, month) == (run_date.year, run_date.month):
        return run_date
    return date(year, month, calendar.monthrange(year, month)[1])


def build_request(
    *,
    cfg: IntegrationConfig,
    lookup: MappingLookup,
    doc_kind: str,
    doc_data: dict[str, Any],
    posting_kind: str,
    period: str | None,
    key: str,
) -> PostingRequest:
    """The request for one posting of one document."""
    data = DATA_MODELS[doc_kind].model_validate(doc_data)
    if doc_kind == "bill":
        return _bill_request(cfg, lookup, data, posting_kind, key)  # type: ignore[arg-type]
    if doc_kind == "payroll_run" and posting_kind == PostingKind.JOURNAL:
        return _payroll_request(cfg, data, period or "", key)  # type: ignore[arg-type]
    raise NotSendable(f"A {doc_kind} has no {posting_kind} posting.", code="no_such_posting")


def _bill_request(
    cfg: IntegrationConfig, lookup: MappingLookup, bill: BillData, posting_kind: str, key: str
) -> PostingRequest:
    supplier = Party(number=bill.supplier.number, name=bill.supplier.name)
    if posting_kind == PostingKind.INVOICE:
        return PostingRequest(
            kind=PostingKind.INVOICE,
            idempotency_key=key,
            company_key=cfg.name,
            date=bill.date,
            due_date=bill.due_date,
            currency=bill.currency,
            amount=bill.amount,
            text=bill.text or f"{bill.supplier.name} invoice {bill.invoice_number}",
            reference=bill.invoice_number,
            supplier=supplier,
            account=_mapped(lookup, cfg, "category", bill.category),
            department=(_mapped(lookup, cfg, "department", bill.department) if bill.department else None),
        )
    if posting_kind == PostingKind.PAYMENT:
        if bill.paid is None:
            raise NotSendable("The bill is not paid, so it has no payment posting.", "not_paid")
        if cfg.payment_account is None:
            raise NotSendable(
                f"No payment_account is configured for {cfg.name}; set it in ledgerops.toml.",
                "no_payment_account",
            )
        return PostingRequest(
            kind=PostingKind.PAYMENT,
            idempotency_key=key,
            company_key=cfg.name,
            date=bill.paid.date,
            currency=bill.currency,
            amount=bill.paid.amount,
            text=f"Payment {bill.supplier.name} invoice {bill.invoice_number}",
            reference=bill.invoice_number,
            supplier=supplier,
            account=str(cfg.payment_account),
        )
    raise NotSendable(f"A bill has no {posting_kind} posting.", code="no_such_posting")


def _payroll_request(cfg: IntegrationConfig, run: PayrollRunData, period: str, key: str) -> PostingRequest:
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
