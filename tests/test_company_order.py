"""Per-company order survives a crash, and a stalled worker never overlaps a new one (issue 10.4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from app import connector_for
from bot.runtime import Runtime
from connectors.base import Connector, PostingRequest, PostingResult
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.connector import SandboxConnector
from storage.models import Attempt, Document, Posting
from sync import worker as worker_module
from sync.config import IntegrationConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from sync.worker import Worker
from tests.support import FakeClock, bill, make_config

LEASE = 120


class Killed(BaseException):
    """The process died: nothing after this point runs (not even ``finally`` writes)."""


class ScriptedLedger(SandboxConnector):
    """The sandbox ledger with a script per bill: pass time, die, or stall until released."""

    def __init__(self, base: SandboxConnector, clock: FakeClock):
        super().__init__(base.ledger)
        self.clock = clock
        self.advance: dict[str, float] = {}
        self.die_before: set[str] = set()
        self.stall_after: dict[str, asyncio.Event] = {}
        self.stalled = asyncio.Event()
        self.arrivals: list[str] = []

    async def create(self, request: PostingRequest) -> PostingResult:
        doc = request.reference.removeprefix("INV-")
        if doc in self.die_before:
            self.die_before.discard(doc)
            raise Killed
        result = await super().create(request)
        self.arrivals.append(doc)
        self.clock.advance(self.advance.get(doc, 0))
        if (gate := self.stall_after.pop(doc, None)) is not None:
            self.stalled.set()
            await gate.wait()
        return result

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        result = await super().update(external_ref, request)
        self.arrivals.append(request.reference.removeprefix("INV-") + "*")
        return result


async def ingest(runtime: Runtime, *events: dict[str, Any]) -> None:
    valid, errors = validate_batch({"events": list(events)}, set(runtime.engine.integrations))
    assert not errors, errors
    await ingest_batch(runtime.engine, valid)


async def scripted_runtime(make_runtime: Any, clock: FakeClock) -> tuple[Runtime, ScriptedLedger]:
    made: dict[str, ScriptedLedger] = {}

    def factory(cfg: IntegrationConfig) -> Connector:
        base = connector_for(cfg, sandbox_books=runtime.sandbox_books)
        assert isinstance(base, SandboxConnector)
        made.setdefault(cfg.name, ScriptedLedger(base, clock))
        return made[cfg.name]

    runtime = await make_runtime(make_config(), connectors=factory)
    runtime.engine.connector("books-dk")
    return runtime, made["books-dk"]


async def states(runtime: Runtime) -> dict[str, str]:
    async with runtime.db.sessions() as s:
        rows = await s.execute(
            select(Document.external_id, Posting.state).join(Document).order_by(Posting.id)
        )
        return {external_id: state for external_id, state in rows.all()}


async def test_queue_never_moves_past_a_posting_a_dead_worker_left_in_flight(
    make_runtime: Any, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, ledger = await scripted_runtime(make_runtime, clock)
    await ingest(runtime, *(bill(f"B-{i}") for i in range(1, 5)))
    # B-1 takes a quarter of the lease; the worker dies after claiming B-2, before its call.
    ledger.advance["B-1"] = LEASE / 4
    ledger.die_before.add("B-2")
    dying = Worker(runtime.engine, holder="dying")
    with monkeypatch.context() as m:
        m.setattr(worker_module, "release_lease", lambda *a, **k: None)  # a dead process frees nothing
        with pytest.raises(Killed):
            await dying._drain("books-dk")
    assert (await states(runtime))["B-2"] == "in_flight"

    # The company's lease has expired; B-2's own lease has not. A new process must wait.
    clock.advance(LEASE * 3 / 4 + 1)
    await runtime.worker.run_until_idle()
    assert ledger.arrivals == ["B-1"]
    assert (await states(runtime))["B-3"] == "pending"

    clock.advance(LEASE)
    await runtime.worker.run_until_idle()
    assert ledger.arrivals == ["B-1", "B-2", "B-3", "B-4"]
    assert set((await states(runtime)).values()) == {"synced"}


async def test_a_stalled_worker_cannot_record_over_the_one_that_took_over(
    make_runtime: Any, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    runtime, ledger = await scripted_runtime(make_runtime, clock)
    await ingest(runtime, bill("B-1"))
    gate = asyncio.Event()
    ledger.stall_after["B-1"] = gate  # the ledger wrote B-1; the answer takes ages
    stalled = Worker(runtime.engine, holder="stalled")
    first = asyncio.create_task(stalled._drain("books-dk"))
    await asyncio.wait_for(ledger.stalled.wait(), 10)

    # Past every lease: another process recovers B-1 (it finds the voucher), then gets
    # a change of B-1 and a new bill B-2, and is mid-call on the change when the
    # stalled worker wakes up.
    clock.advance(LEASE * 2)
    await runtime.worker.run_until_idle()
    assert (await states(runtime))["B-1"] == "synced"
    taking_over = Worker(runtime.engine, holder="new")
    ledger.stalled.clear()
    second_gate = asyncio.Event()
    await ingest(runtime, bill("B-1", version=2, amount="1300.00"), bill("B-2"))

    original_update = ledger.update

    async def slow_update(ref: str, request: PostingRequest) -> PostingResult:
        result = await original_update(ref, request)
        ledger.stalled.set()
        await second_gate.wait()
        return result

    ledger.update = slow_update  # type: ignore[method-assign]
    second = asyncio.create_task(taking_over._drain("books-dk"))
    await asyncio.wait_for(ledger.stalled.wait(), 10)
    async with runtime.db.sessions() as s:
        attempts_before = await s.scalar(select(func.count()).select_from(Attempt))

    gate.set()  # the stalled worker wakes: it must record nothing and send nothing more
    await asyncio.wait_for(first, 10)
    async with runtime.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Attempt)) == attempts_before
    assert (await states(runtime)) == {"B-1": "in_flight", "B-2": "pending"}
    assert "B-2" not in ledger.arrivals

    second_gate.set()
    await asyncio.wait_for(second, 10)
    await runtime.worker.run_until_idle()
    assert ledger.arrivals == ["B-1", "B-1*", "B-2"]
    assert set((await states(runtime)).values()) == {"synced"}
    assert len(sandbox_books["books-dk"].vouchers) == 2


def test_a_call_timeout_that_could_outlive_the_lease_is_refused_at_start_up() -> None:
    from pydantic import ValidationError

    from sync.config import WorkerConfig

    with pytest.raises(ValidationError, match="call_timeout_seconds"):
        WorkerConfig(lease_seconds=60, call_timeout_seconds=45)
    assert WorkerConfig(lease_seconds=60, call_timeout_seconds=30).lease_seconds == 60


async def test_a_write_with_an_unknown_outcome_holds_the_company_queue(
    make_runtime: Any, clock: FakeClock
) -> None:
    runtime, ledger = await scripted_runtime(make_runtime, clock)
    await ingest(runtime, bill("B-1"), bill("B-2"))
    ledger.ledger.switches.fail_next = 1  # a 503 to B-1's create: saved or not, nobody knows
    await runtime.worker.run_until_idle()
    assert ledger.arrivals == []
    assert await states(runtime) == {"B-1": "retrying", "B-2": "pending"}

    clock.advance(3600)
    await runtime.worker.run_until_idle()
    assert ledger.arrivals == ["B-1", "B-2"]
    assert set((await states(runtime)).values()) == {"synced"}
