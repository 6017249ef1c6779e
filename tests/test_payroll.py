"""Payroll runs: one journal per period, corrections booked where they belong."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from sync.resync import resync_document
from tests.test_engine_rules import ingest


def payroll(version: int = 1, company_is_test: bool = False) -> dict[str, Any]:
    lines = [
        {"account": "4000", "amount": "52000.00", "period": "2026-11", "cost_center": "CPH"},
        {"account": "6900", "amount": "-52000.00", "period": "2026-11"},
        {"account": "4000", "amount": "1200.00", "period": "2026-10", "text": "Overtime Oct"},
        {"account": "6900", "amount": "-1200.00", "period": "2026-10"},
    ]
    return {
        "source": "payroll",
        "kind": "payroll_run",
        "id": "RUN-2026-11",
        "version": version,
        "integration": "books-dk",
        "data": {"run": "2026-11", "date": "2026-11-25", "company_is_test": company_is_test, "lines": lines},
    }


async def test_corrections_book_in_their_own_period(runtime: Runtime, sandbox_books: SandboxBooks) -> None:
    result = await ingest(runtime, payroll())
    assert [(p["kind"], p["period"]) for p in result.accepted[0]["postings"]] == [
        ("journal", "2026-10"),
        ("journal", "2026-11"),
    ]
    await runtime.worker.run_until_idle()
    vouchers = sorted(sandbox_books["books-dk"].vouchers.values(), key=lambda v: v.date)
    assert [(v.date.isoformat(), v.body["period"]) for v in vouchers] == [
        ("2026-10-31", "2026-10"),
        ("2026-11-25", "2026-11"),
    ]
    for v in vouchers:
        assert sum(Decimal(amount) for _, amount in v.body["lines"]) == 0


async def test_resync_of_one_journal_leaves_the_other_period_alone(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, payroll())
    await runtime.worker.run_until_idle()
    [outcome] = await resync_document(
        runtime.engine, "payroll", "payroll_run", "RUN-2026-11", ["journal:2026-10"], "U0ALICE"
    )
    assert outcome.ok and "2026-10" in outcome.message
    await runtime.worker.run_until_idle()
    assert sorted(v.revision for v in sandbox_books["books-dk"].vouchers.values()) == [1, 2]


async def test_test_company_payroll_is_refused_and_not_retried(
    runtime: Runtime, clock: Any, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, payroll(company_is_test=True))
    await runtime.worker.run_until_idle()
    clock.advance(24 * 3600)
    await runtime.worker.run_until_idle()
    from sync.log import document_view

    async with runtime.db.sessions() as s:
        view = await document_view(s, "payroll", "payroll_run", "RUN-2026-11")
    assert view is not None
    assert {p["state"] for p in view["postings"]} == {"failed"}
    assert all("test company" in p["last_error"] for p in view["postings"])
    assert all(p["attempts"] == 1 for p in view["postings"])
    assert not sandbox_books.get("books-dk") or not sandbox_books["books-dk"].vouchers
