"""Pause/resume, mappings set by a person, history transfer, and the overviews."""

from __future__ import annotations

from datetime import date

from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from sync.admin import history_count, set_mapping, set_paused, transfer_history
from sync.overview import company_queues, find_documents, integration_status, needs_attention
from tests.support import FakeClock, bill, make_config, sandbox_integration
from tests.test_engine_rules import ingest, posting, view


async def test_pause_stops_transfers_and_resume_sends_what_was_queued(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    message = await set_paused(runtime.engine, "books-dk", True, "U0ALICE")
    assert "paused" in message
    await ingest(runtime, bill("P-1"), bill("P-2"))
    await runtime.worker.run_until_idle()
    assert not sandbox_books.get("books-dk") or not sandbox_books["books-dk"].vouchers
    async with runtime.db.sessions() as s:
        [status] = await integration_status(s, runtime.engine.clock())
    assert status.paused and status.counts == {"pending": 2}
    assert "already paused" in await set_paused(runtime.engine, "books-dk", True, "U0ALICE")
    await set_paused(runtime.engine, "books-dk", False, "U0ALICE")
    await runtime.worker.run_until_idle()
    assert len(sandbox_books["books-dk"].vouchers) == 2


async def test_map_fixes_the_failures_it_caused_and_wins_over_config(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(
        runtime, bill("M-1", category="Travel"), bill("M-2", category="Travel"), bill("M-3", category="Meals")
    )
    await runtime.worker.run_until_idle()
    requeued = await set_mapping(runtime.engine, "books-dk", "category", "Travel", 2750, "U0ALICE")
    assert len(requeued) == 2
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "M-1"))["state"] == "synced"
    assert posting(await view(runtime, "M-3"))["state"] == "failed"
    assert (
        sandbox_books["books-dk"].vouchers[posting(await view(runtime, "M-2"))["external_ref"]].account
        == "2750"
    )
    await set_mapping(runtime.engine, "books-dk", "category", "Office supplies", 2820, "U0BOB")
    source = runtime.engine.mapping_book.where("books-dk", "category", "Office supplies")
    assert (source.number, source.origin, source.set_by) == (2820, "database", "U0BOB")
    async with runtime.db.sessions() as s:
        groups = await needs_attention(s)
    assert [(g.code, g.failed) for g in groups] == [("unmapped_category", 1)]
    assert groups[0].documents == [("ap", "bill", "Kontorland A/S · INV-M-3 · 1,250.00 DKK")]


async def test_map_queues_exactly_the_postings_that_lacked_that_mapping(runtime: Runtime) -> None:
    # A category may hold what a text match reads as a pattern ("%", "_") or differ only
    # in case; each mapping fixes the postings that lacked it, and no others.
    await ingest(
        runtime,
        bill("W-1", category="Fees 50%"),
        bill("W-2", category="Fees 50% off"),
        bill("W-3", category="fees 50%"),
        bill("W-4", category="Fees_50%"),
    )
    await runtime.worker.run_until_idle()
    requeued = await set_mapping(runtime.engine, "books-dk", "category", "Fees 50%", 2750, "U0ALICE")
    assert len(requeued) == 1
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "W-1"))["state"] == "synced"
    for other in ("W-2", "W-3", "W-4"):
        assert posting(await view(runtime, other))["state"] == "failed"


async def test_history_transfers_only_when_asked(make_runtime: object, clock: FakeClock) -> None:
    rt: Runtime = await make_runtime(  # type: ignore[operator]
        make_config(sandbox_integration(history_start=date(2026, 11, 1)))
    )
    await ingest(rt, bill("H-1", date="2026-09-10"), bill("H-2", date="2026-10-10"))
    await rt.worker.run_until_idle()
    assert await history_count(rt.engine, "books-dk", date(2026, 10, 1)) == 1
    assert await transfer_history(rt.engine, "books-dk", date(2026, 10, 1), "U0ALICE") == 1
    await rt.worker.run_until_idle()
    assert posting(await view(rt, "H-2"))["state"] == "synced"
    assert posting(await view(rt, "H-1"))["state"] == "waiting"


async def test_queue_shows_what_waits_per_company_and_since_when(runtime: Runtime, clock: FakeClock) -> None:
    since = clock.now
    await ingest(runtime, bill("Q-1"), bill("Q-2"))
    async with runtime.db.sessions() as s:
        [q] = await company_queues(s, clock.now)
        docs = await find_documents(s, "bill:Q-1")
    assert (q.company, q.queued, q.queued_since) == ("books-dk", 2, since)
    assert [d.external_id for d in docs] == ["Q-1"]


async def test_pause_stops_a_drain_under_way_and_loses_nothing(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    """A pause takes effect at the next posting, not when the queue happens to run dry."""
    runtime.engine.connector("books-dk")
    ledger = sandbox_books["books-dk"]
    create = ledger.create

    async def create_then_pause(req):  # type: ignore[no-untyped-def]
        result = await create(req)
        if len(ledger.vouchers) == 2:  # someone presses Pause while the worker is busy
            await set_paused(runtime.engine, "books-dk", True, "U0ALICE")
        return result

    ledger.create = create_then_pause  # type: ignore[method-assign]
    await ingest(runtime, *(bill(f"D-{i}") for i in range(10)))
    await runtime.worker.run_until_idle()
    assert len(ledger.vouchers) == 2
    async with runtime.db.sessions() as s:
        [status] = await integration_status(s, runtime.engine.clock())
    assert status.paused and status.counts == {"synced": 2, "pending": 8}
    await set_paused(runtime.engine, "books-dk", False, "U0ALICE")
    await runtime.worker.run_until_idle()
    keys = [v.reference_key for v in ledger.vouchers.values()]
    assert len(keys) == 10 and len(set(keys)) == 10
