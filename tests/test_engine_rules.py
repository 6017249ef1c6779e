"""The rules of issue 2, each a test, through the engine and worker on a real database."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from app import connector_for
from bot.runtime import Runtime
from connectors.base import Connector
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.connector import SandboxConnector
from storage.models import Attempt, ErrorGroup, Posting
from sync.bulk import BulkFilter, resync_many
from sync.config import IntegrationConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from sync.log import document_view
from sync.resync import ignore_posting, resync_document
from sync.worker import Worker
from tests.support import FakeClock, bill, make_config, sandbox_integration


async def ingest(runtime: Runtime, *events: dict[str, Any]) -> Any:
    valid, errors = validate_batch({"events": list(events)}, set(runtime.engine.integrations))
    assert not errors, errors
    return await ingest_batch(runtime.engine, valid)


async def view(runtime: Runtime, doc_id: str) -> dict[str, Any]:
    async with runtime.db.sessions() as s:
        result = await document_view(s, "ap", "bill", doc_id)
    assert result is not None
    return result


def posting(v: dict[str, Any], kind: str = "invoice") -> dict[str, Any]:
    return next(p for p in v["postings"] if p["kind"] == kind)


async def test_draft_in_ledger_is_updated_not_created_again(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-1"))
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-1", version=2, amount="1400.00", department="Sales"))
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-1")
    assert posting(v)["state"] == "synced"
    assert [a["operation"] for a in v["attempts"]] == ["update", "create"]
    ledger = sandbox_books["books-dk"]
    assert len(ledger.vouchers) == 1
    voucher = ledger.vouchers[posting(v)["external_ref"]]
    assert str(voucher.amount) == "1400.00" and voucher.body["department"] == "1"


async def test_booked_voucher_is_never_changed_nor_created_again(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-2"))
    await runtime.worker.run_until_idle()
    ref = posting(await view(runtime, "B-2"))["external_ref"]
    sandbox_books["books-dk"].book(ref)
    await ingest(runtime, bill("B-2", version=2, amount="99.00"))
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-2")
    p = posting(v)
    assert p["state"] == "booked" and p["erp_status"] == "booked"
    assert "booked" in p["last_error"] and ref in p["last_error"]
    assert v["attempts"][0]["outcome"] == "booked"
    ledger = sandbox_books["books-dk"]
    assert len(ledger.vouchers) == 1 and str(ledger.vouchers[ref].amount) == "1250.00"
    [refusal] = await resync_document(runtime.engine, "ap", "bill", "B-2", ["invoice"], "U0ALICE")
    assert not refusal.ok and "booked" in refusal.message
    await runtime.worker.run_until_idle()
    assert len(ledger.vouchers) == 1


async def test_missing_record_is_created(runtime: Runtime, sandbox_books: SandboxBooks) -> None:
    await ingest(runtime, bill("B-3"))
    await runtime.worker.run_until_idle()
    ref = posting(await view(runtime, "B-3"))["external_ref"]
    del sandbox_books["books-dk"].vouchers[ref]  # someone deleted the draft in the ledger
    [outcome] = await resync_document(runtime.engine, "ap", "bill", "B-3", ["invoice"], "U0ALICE")
    assert outcome.ok
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-3")
    assert posting(v)["state"] == "synced" and posting(v)["external_ref"] != ref
    assert v["attempts"][0]["operation"] == "create"
    assert v["attempts"][0]["trigger"] == "manual" and v["attempts"][0]["actor"] == "U0ALICE"


async def test_payment_posting_only_once_the_bill_is_paid(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-4"))
    await runtime.worker.run_until_idle()
    [refused] = await resync_document(runtime.engine, "ap", "bill", "B-4", ["payment"], "U0ALICE")
    assert not refused.ok and "not paid" in refused.message
    assert [p["kind"] for p in (await view(runtime, "B-4"))["postings"]] == ["invoice"]
    await ingest(runtime, bill("B-4", version=2, paid={"date": "2026-11-20", "amount": "1250.00"}))
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-4")
    assert {p["kind"]: p["state"] for p in v["postings"]} == {"invoice": "synced", "payment": "synced"}
    payment = sandbox_books["books-dk"].vouchers[posting(v, "payment")["external_ref"]]
    assert payment.account == "5820" and payment.kind == "payment"
    # the invoice did not change, so it was not sent again
    assert sum(1 for a in v["attempts"] if a["posting"] == "invoice") == 1


async def test_unapproved_bill_has_no_posting(runtime: Runtime, sandbox_books: SandboxBooks) -> None:
    result = await ingest(runtime, bill("B-5", approved=False))
    assert result.accepted[0]["postings"] == []
    await runtime.worker.run_until_idle()
    assert sandbox_books.get("books-dk") is None or not sandbox_books["books-dk"].vouchers


async def test_unmapped_category_needs_a_person_and_is_not_retried(
    runtime: Runtime, clock: FakeClock
) -> None:
    await ingest(runtime, bill("B-6", category="Travel"))
    await runtime.worker.run_until_idle()
    p = posting(await view(runtime, "B-6"))
    assert p["state"] == "failed" and "Travel" in p["last_error"]
    clock.advance(7 * 24 * 3600)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-6")
    assert posting(v)["attempts"] == 1 and len(v["attempts"]) == 1


async def test_similar_failures_share_one_error_group(runtime: Runtime) -> None:
    await ingest(
        runtime, *[bill(f"G-{i}", category="Travel") for i in range(5)], bill("G-x", category="Meals")
    )
    await runtime.worker.run_until_idle()
    async with runtime.db.sessions() as s:
        groups = (
            await s.execute(
                select(ErrorGroup.title, func.count(Posting.id))
                .join(Posting, Posting.error_group_id == ErrorGroup.id)
                .group_by(ErrorGroup.title)
            )
        ).all()
    counts = sorted(n for _, n in groups)
    assert counts == [1, 5]


async def test_timeout_after_write_never_makes_a_second_record(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-7"))
    sandbox_books.open("books-dk", {}).switches.timeouts_after_write = 1
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-7")
    assert posting(v)["state"] == "retrying"
    assert v["attempts"][0]["outcome"] == "uncertain"
    clock.advance(3600)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-7")
    assert posting(v)["state"] == "synced"
    assert v["attempts"][0]["operation"] == "lookup"
    ledger = sandbox_books["books-dk"]
    assert len(ledger.vouchers) == 1 and ledger.writes == 1


class CrashAfterLedger(Worker):
    """A worker that dies between the ledger's answer and our commit, once."""

    crashed = False

    def _record(self, *args: Any, **kwargs: Any) -> None:
        if not self.crashed:
            CrashAfterLedger.crashed = True
            raise SystemError("process killed")
        super()._record(*args, **kwargs)


async def test_crash_between_ledger_answer_and_commit_never_duplicates(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-8"))
    crashing = CrashAfterLedger(runtime.engine)
    CrashAfterLedger.crashed = False
    with pytest.raises(SystemError):
        await crashing._drain("books-dk")
    async with runtime.db.sessions() as s:
        assert await s.scalar(select(Posting.state)) == "in_flight"
    clock.advance(runtime.config.worker.lease_seconds + 1)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-8")
    assert posting(v)["state"] == "synced"
    assert v["attempts"][0]["operation"] == "lookup"
    assert v["attempts"][0]["trigger"] == "sweeper"
    assert len(sandbox_books["books-dk"].vouchers) == 1


async def test_transient_outage_retries_with_backoff_then_syncs(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-9"))
    ledger = sandbox_books.open("books-dk", {})
    ledger.switches.outage = True
    await runtime.worker.run_until_idle()
    async with runtime.db.sessions() as s:
        p = (await s.scalars(select(Posting))).one()
    assert p.state == "retrying"
    lo, hi = runtime.engine.policy.bounds(1)
    assert lo <= (p.next_attempt_at - clock.now).total_seconds() <= hi
    await runtime.worker.run_until_idle()  # not due yet: nothing happens
    assert (await view(runtime, "B-9"))["postings"][0]["attempts"] == 1
    ledger.switches.outage = False
    clock.advance(hi + 1)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-9")
    assert posting(v)["state"] == "synced"
    assert [a["trigger"] for a in v["attempts"]] == ["retry", "auto"]


async def test_gives_up_after_the_attempt_limit(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-10"))
    sandbox_books.open("books-dk", {}).switches.outage = True
    limit = runtime.engine.policy.max_attempts
    for _ in range(limit):
        await runtime.worker.run_until_idle()
        clock.advance(runtime.engine.policy.max_seconds * 2)
    p = posting(await view(runtime, "B-10"))
    assert p["state"] == "failed" and p["attempts"] == limit
    # the posting keeps the ledger's words; the log line says ledgerops gave up
    assert p["last_error"] == "Could not connect to the ledger (connection refused)."
    async with runtime.db.sessions() as s:
        last = (await s.scalars(select(Attempt).order_by(Attempt.id.desc()))).first()
    assert last is not None and last.gave_up
    assert last.message.startswith(f"Gave up after {limit} attempts")


async def test_change_while_in_flight_is_sent_afterwards(
    make_runtime: Any, sandbox_books: SandboxBooks
) -> None:
    holder: dict[str, Runtime] = {}

    class ChangesDuringCreate(SandboxConnector):
        async def create(self, request: Any) -> Any:
            result = await super().create(request)
            if "B-11" in request.reference:
                await ingest(holder["rt"], bill("B-11", version=2, amount="10.00"))
            return result

    def factory(cfg: IntegrationConfig) -> Connector:
        base = connector_for(cfg, sandbox_books=sandbox_books)
        assert isinstance(base, SandboxConnector)
        return ChangesDuringCreate(base.ledger)

    rt = holder["rt"] = await make_runtime(connectors=factory)
    await ingest(rt, bill("B-11"))
    await rt.worker.run_until_idle()
    v = await view(rt, "B-11")
    assert posting(v)["state"] == "synced"
    assert [a["operation"] for a in v["attempts"]] == ["update", "create"]
    [voucher] = sandbox_books["books-dk"].vouchers.values()
    assert str(voucher.amount) == "10.00"


async def test_bulk_resync_unpaid_invoice_paid_both(runtime: Runtime) -> None:
    paid = {"date": "2026-11-20", "amount": "1250.00"}
    await ingest(
        runtime, bill("U-1", category="Travel"), bill("P-1", category="Travel", paid=paid), bill("OK-1")
    )
    await runtime.worker.run_until_idle()
    result = await resync_many(runtime.engine, BulkFilter(), "U0ALICE")
    assert result.documents == 2
    assert result.queued == 3  # U-1 invoice; P-1 invoice and payment
    async with runtime.db.sessions() as s:
        states = dict(
            (
                await s.execute(
                    select(
                        Posting.slot + ":" + Posting.document_id.cast(__import__("sqlalchemy").String),
                        Posting.state,
                    )
                )
            ).all()
        )
    assert sorted(states.values()).count("pending") == 3


async def test_ignore_stops_a_failed_posting(runtime: Runtime, clock: FakeClock) -> None:
    await ingest(runtime, bill("B-12", category="Travel"))
    await runtime.worker.run_until_idle()
    async with runtime.db.sessions() as s:
        pid = await s.scalar(select(Posting.id))
    outcome = await ignore_posting(runtime.engine, pid, "U0ALICE")
    assert outcome.ok
    again = await ignore_posting(runtime.engine, pid, "U0ALICE")
    assert not again.ok
    v = await view(runtime, "B-12")
    assert posting(v)["state"] == "ignored"
    assert v["attempts"][0]["actor"] == "U0ALICE"


async def test_double_resync_queues_once(runtime: Runtime) -> None:
    await ingest(runtime, bill("B-13", category="Travel"))
    await runtime.worker.run_until_idle()
    first, second = (
        await resync_document(runtime.engine, "ap", "bill", "B-13", ["invoice"], "U1"),
        await resync_document(runtime.engine, "ap", "bill", "B-13", ["invoice"], "U2"),
    )
    assert first[0].ok and not second[0].ok and "already queued" in second[0].message
    await runtime.worker.run_until_idle()
    async with runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Attempt)) == 2


async def test_auto_transfer_off_waits_until_switched_on(
    make_runtime: Any, sandbox_books: SandboxBooks
) -> None:
    off = make_config(sandbox_integration(auto_transfer=False))
    rt = await make_runtime(off)
    result = await ingest(rt, bill("B-14"))
    assert result.accepted[0]["postings"][0]["state"] == "waiting"
    await rt.worker.run_until_idle()
    assert not sandbox_books.get("books-dk") or not sandbox_books["books-dk"].vouchers
    on = await make_runtime(make_config(sandbox_integration(auto_transfer=True)))
    await on.worker.run_until_idle()
    assert posting(await view(on, "B-14"))["state"] == "synced"


async def test_history_before_start_waits(make_runtime: Any) -> None:
    from datetime import date

    rt = await make_runtime(make_config(sandbox_integration(history_start=date(2026, 11, 1))))
    result = await ingest(rt, bill("OLD", date="2026-10-15"), bill("NEW", date="2026-11-15"))
    states = [a["postings"][0]["state"] for a in result.accepted]
    assert states == ["waiting", "pending"]
    v = await view(rt, "OLD")
    assert "history start" in posting(v)["last_error"]


async def test_changed_before_lookup_retry_is_still_sent(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-15"))
    sandbox_books.clear()
    ledger = sandbox_books.open("books-dk", {})
    ledger.switches.timeouts_after_write = 1
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-15", version=2, amount="77.00"))
    clock.advance(3600)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-15")
    assert posting(v)["state"] == "synced"
    [voucher] = ledger.vouchers.values()
    assert str(voucher.amount) == "77.00"


class CountingConnector(SandboxConnector):
    """Records how many calls are in flight at once, per company and in all.

    The first create holds until a second company's create is in flight too (or
    a deadline passes), so "companies run in parallel" is shown, not hoped for.
    """

    in_flight: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}
    total_peak = 0
    overlap: ClassVar[asyncio.Event | None] = None

    async def create(self, request: Any) -> Any:
        cls = CountingConnector
        company = request.company_key
        cls.in_flight[company] = cls.in_flight.get(company, 0) + 1
        cls.peak[company] = max(cls.peak.get(company, 0), cls.in_flight[company])
        cls.total_peak = max(cls.total_peak, sum(cls.in_flight.values()))
        try:
            assert cls.overlap is not None
            if cls.total_peak >= 2:
                cls.overlap.set()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cls.overlap.wait(), timeout=5)
            return await super().create(request)
        finally:
            cls.in_flight[company] -= 1


async def test_one_posting_per_company_in_flight_even_with_several_workers(
    make_runtime: Any, sandbox_books: SandboxBooks
) -> None:
    CountingConnector.in_flight, CountingConnector.peak = {}, {}
    CountingConnector.total_peak = 0
    CountingConnector.overlap = asyncio.Event()
    config = make_config(
        sandbox_integration("co-a", latency_ms=5),
        sandbox_integration("co-b", latency_ms=5),
        sandbox_integration("co-c", latency_ms=5),
    )

    def factory(cfg: IntegrationConfig) -> Connector:
        base = connector_for(cfg, sandbox_books=sandbox_books)
        assert isinstance(base, SandboxConnector)
        return CountingConnector(base.ledger)

    # three processes' worth of workers sharing one database
    runtimes = [await make_runtime(config, connectors=factory) for _ in range(3)]
    await ingest(
        runtimes[0], *[bill(f"{co}-{i}", integration=co) for co in ("co-a", "co-b", "co-c") for i in range(8)]
    )
    await asyncio.gather(*(rt.worker.run_until_idle() for rt in runtimes))
    assert CountingConnector.peak == {"co-a": 1, "co-b": 1, "co-c": 1}
    assert CountingConnector.total_peak >= 2  # companies ran in parallel
    for co in ("co-a", "co-b", "co-c"):
        assert len(sandbox_books[co].vouchers) == 8
        numbers = sorted(v.ref for v in sandbox_books[co].vouchers.values())
        assert len(set(numbers)) == 8


async def test_rate_limits_never_make_a_posting_give_up(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-16"))
    ledger = sandbox_books.open("books-dk", {})
    for _ in range(runtime.engine.policy.max_attempts + 2):
        ledger.switches.rate_limit_next = 60
        await runtime.worker.run_until_idle()
        clock.advance(runtime.engine.policy.max_seconds * 2)
    p = posting(await view(runtime, "B-16"))
    assert p["state"] == "retrying" and p["attempts"] == runtime.engine.policy.max_attempts + 2
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "B-16"))["state"] == "synced"


async def test_a_voucher_number_reused_by_the_ledger_is_never_overwritten(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("R-1"))
    await runtime.worker.run_until_idle()
    ledger = sandbox_books["books-dk"]
    ledger.vouchers.clear()  # the sandbox restarted: numbering starts again at 50001
    ledger._next_number = 50001
    await ingest(runtime, bill("R-2"))
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "R-2"))["external_ref"] == "2026-50001"
    await ingest(runtime, bill("R-1", version=2, amount="5.00"))
    await runtime.worker.run_until_idle()
    v1 = posting(await view(runtime, "R-1"))
    assert v1["state"] == "synced" and v1["external_ref"] == "2026-50002"
    assert str(ledger.vouchers["2026-50001"].amount) == "1250.00"  # R-2's voucher untouched
