"""A posting the document no longer needs is withdrawn from the ledger (issue 10.3)."""

from __future__ import annotations

import asyncio
from typing import Any

from app import connector_for
from bot.runtime import Runtime
from connectors.base import Connector, PostingRequest, PostingResult
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.connector import SandboxConnector
from sync.config import IntegrationConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from sync.log import document_view
from sync.resync import resync_document
from tests.slack_harness import slack_harness
from tests.support import FakeClock, bill
from tests.test_payroll import payroll

PAID = {"date": "2026-11-20", "amount": "1250.00"}


async def ingest(runtime: Runtime, *events: dict[str, Any]) -> None:
    valid, errors = validate_batch({"events": list(events)}, set(runtime.engine.integrations))
    assert not errors, errors
    await ingest_batch(runtime.engine, valid)


async def view(runtime: Runtime, doc_id: str) -> dict[str, Any]:
    async with runtime.db.sessions() as s:
        result = await document_view(s, "ap", "bill", doc_id)
    assert result is not None
    return result


def posting(v: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(p for p in v["postings"] if p["kind"] == kind)


def payment_log(v: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in v["attempts"] if a["posting"] == "payment"]


async def test_a_draft_payment_is_deleted_when_the_bill_is_no_longer_paid(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-1", paid=PAID))
    await runtime.worker.run_until_idle()
    ref = posting(await view(runtime, "B-1"), "payment")["external_ref"]
    assert ref in sandbox_books["books-dk"].vouchers

    await ingest(runtime, bill("B-1", version=2, paid=None))
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-1")
    assert posting(v, "payment")["state"] == "withdrawn"
    assert posting(v, "invoice")["state"] == "synced"
    latest = payment_log(v)[0]
    assert (latest["operation"], latest["outcome"], latest["external_ref"]) == ("delete", "withdrawn", ref)
    ledger = sandbox_books["books-dk"]
    assert ref not in ledger.vouchers
    assert [x.kind for x in ledger.vouchers.values()] == ["invoice"]


async def test_a_booked_payment_is_flagged_to_a_person_not_left_silently(
    db_url: str, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        runtime = h.runtime
        await h.ingest(bill("B-2", paid=PAID))
        await runtime.worker.run_until_idle()
        ref = posting(await view(runtime, "B-2"), "payment")["external_ref"]
        sandbox_books["books-dk"].book(ref)

        await h.ingest(bill("B-2", version=2, paid=None))
        await runtime.worker.run_until_idle()
        v = await view(runtime, "B-2")
        p = posting(v, "payment")
        reason = f"payment {ref} is booked; the bill is no longer paid — reverse it in the ledger"
        assert p["state"] == "booked" and p["last_error"] == reason
        assert payment_log(v)[0]["outcome"] == "booked"
        assert sandbox_books["books-dk"].vouchers[ref].status == "booked"  # never touched
        await h.deliver()
        shown = [h.fake.text_of(h.fake.ts_of(post)) for post in h.fake.posts()]
        assert sum(reason in m for m in shown) == 1


async def test_a_payment_never_sent_is_withdrawn_without_calling_the_ledger(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    ledger = sandbox_books.open("books-dk", {})
    await ingest(runtime, bill("B-3"))
    await runtime.worker.run_until_idle()
    ledger.switches.outage = True
    await ingest(runtime, bill("B-3", version=2, paid=PAID))
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "B-3"), "payment")["state"] == "retrying"
    writes = ledger.writes

    await ingest(runtime, bill("B-3", version=3, paid=None))
    v = await view(runtime, "B-3")
    assert posting(v, "payment")["state"] == "withdrawn"
    assert payment_log(v)[0]["operation"] == "none"
    ledger.switches.outage = False
    clock.advance(3600)
    await runtime.worker.run_until_idle()
    assert ledger.writes == writes
    assert [x.kind for x in ledger.vouchers.values()] == ["invoice"]


async def test_an_uncertain_payment_is_looked_up_then_deleted(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    ledger = sandbox_books.open("books-dk", {})
    await ingest(runtime, bill("B-4"))
    await runtime.worker.run_until_idle()
    ledger.switches.timeouts_after_write = 1  # the payment is written, the answer lost
    await ingest(runtime, bill("B-4", version=2, paid=PAID))
    await runtime.worker.run_until_idle()
    assert len(ledger.vouchers) == 2

    await ingest(runtime, bill("B-4", version=3, paid=None))
    clock.advance(3600)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-4")
    assert posting(v, "payment")["state"] == "withdrawn"
    latest = payment_log(v)[0]
    assert (latest["operation"], latest["outcome"]) == ("delete", "withdrawn")
    assert [x.kind for x in ledger.vouchers.values()] == ["invoice"]


async def test_paid_again_after_a_withdrawal_books_one_new_payment(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-5", paid=PAID))
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-5", version=2, paid=None))
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-5", version=3, paid={"date": "2026-11-25", "amount": "1250.00"}))
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-5")
    assert posting(v, "payment")["state"] == "synced"
    payments = [x for x in sandbox_books["books-dk"].vouchers.values() if x.kind == "payment"]
    assert len(payments) == 1 and str(payments[0].date) == "2026-11-25"


async def test_an_unapproved_bill_withdraws_its_invoice(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-6"))
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-6", version=2, approved=False))
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "B-6"), "invoice")["state"] == "withdrawn"
    assert not sandbox_books["books-dk"].vouchers


async def test_resync_of_a_withdrawn_payment_says_why_and_sends_nothing(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("B-7", paid=PAID))
    await runtime.worker.run_until_idle()
    await ingest(runtime, bill("B-7", version=2, paid=None))
    await runtime.worker.run_until_idle()
    writes = sandbox_books["books-dk"].writes
    [outcome] = await resync_document(runtime.engine, "ap", "bill", "B-7", ["payment"], "U0ALICE")
    assert not outcome.ok and "not paid" in outcome.message
    await runtime.worker.run_until_idle()
    assert sandbox_books["books-dk"].writes == writes
    assert posting(await view(runtime, "B-7"), "payment")["state"] == "withdrawn"


async def test_a_removed_payroll_correction_withdraws_that_periods_journal(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, payroll())
    await runtime.worker.run_until_idle()
    ledger = sandbox_books["books-dk"]
    assert sorted(v.body["period"] for v in ledger.vouchers.values()) == ["2026-10", "2026-11"]

    corrected = payroll(version=2)
    corrected["data"]["lines"] = [line for line in corrected["data"]["lines"] if line["period"] == "2026-11"]
    await ingest(runtime, corrected)
    await runtime.worker.run_until_idle()
    assert [v.body["period"] for v in ledger.vouchers.values()] == ["2026-11"]
    async with runtime.db.sessions() as s:
        v = await document_view(s, "payroll", "payroll_run", "RUN-2026-11")
    assert v is not None
    states = {p["period"]: p["state"] for p in v["postings"]}
    assert states == {"2026-10": "withdrawn", "2026-11": "synced"}


async def test_a_payment_withdrawn_while_it_is_being_sent_is_deleted_after(
    make_runtime: Any, sandbox_books: SandboxBooks
) -> None:
    sending, release = asyncio.Event(), asyncio.Event()

    class SlowPayments(SandboxConnector):
        async def create(self, request: PostingRequest) -> PostingResult:
            result = await super().create(request)
            if request.kind == "payment":
                sending.set()
                await release.wait()
            return result

    def factory(cfg: IntegrationConfig) -> Connector:
        base = connector_for(cfg, sandbox_books=sandbox_books)
        assert isinstance(base, SandboxConnector)
        return SlowPayments(base.ledger)

    runtime = await make_runtime(connectors=factory)
    await ingest(runtime, bill("B-8", paid=PAID))
    drain = asyncio.create_task(runtime.worker.run_until_idle())
    await asyncio.wait_for(sending.wait(), 10)
    await ingest(runtime, bill("B-8", version=2, paid=None))  # while its create is on the wire
    release.set()
    await asyncio.wait_for(drain, 10)
    await runtime.worker.run_until_idle()
    v = await view(runtime, "B-8")
    assert posting(v, "payment")["state"] == "withdrawn"
    assert [x.kind for x in sandbox_books["books-dk"].vouchers.values()] == ["invoice"]
