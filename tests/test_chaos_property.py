"""Property: whatever fails when, every posting ends synced or failed, once, in queue order.

Hypothesis draws a few dozen bills over several companies (some with a category no
account is mapped for) and, per company, what each ledger call meets: success, a
failure before the write takes effect (connection refused, a read timeout), a failure
after it took effect (the answer lost: a timeout, a reset connection), or a crash of
the whole process before or after the ledger acted. A crash kills the runtime where it
stands (its database calls fail from then on, so it neither records the outcome nor
gives its leases back); a fresh runtime then starts on the same database while the
test clock moves on in steps shorter than the lease, as a restarted process would find
it. Each ledger call also takes some (test-clock) time, so leases age during a drain.

Then, for every drawn case: every posting is synced or failed; each synced bill has
exactly one record in the ledger (the one the posting names); a failed one has none;
and per company the ledger received the records in queue order, never two writes of
one company at once.

The sandbox ledger runs in process (SQLite for many cases; PostgreSQL for fewer, each
case truncating the database), and the fake e-conomic server on loopback for a few.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app import build_runtime
from bot.runtime import Runtime
from storage.db import connect
from storage.models import Posting
from sync.config import RetryConfig, WorkerConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from tests.chaos_ledgers import ACTIONS, OK, Books, ChaosConnector, Crashed, EconomicBooks, Life, SandboxBooks
from tests.conftest import PG_URL, _pg_reset, need
from tests.support import FakeClock, bill, make_config, make_env, sandbox_integration

LEASE = 60
STEP = 31  # the clock moves on by less than a lease while waiting
MAX_ROUNDS = 200


@dataclass
class Case:
    """One drawn case."""

    bills: list[tuple[str, str, bool]]  # (company, document id, planted to fail), in queue order
    faults: dict[str, list[str]]
    call_seconds: float  # test-clock time one ledger call takes
    restart_after: float  # test-clock time from a crash to the restarted process


@st.composite
def cases(draw: st.DrawFn, max_companies: int = 3, max_bills: int = 10) -> Case:
    companies = [f"co-{n}" for n in range(draw(st.integers(2, max_companies)))]
    bills: list[tuple[str, str, bool]] = []
    counts = {c: draw(st.integers(1, max_bills)) for c in companies}
    for i in range(max(counts.values())):
        for c in companies:
            if i < counts[c]:
                bills.append((c, f"{c}-B{i:03d}", draw(st.integers(0, 9)) == 0))
    faults = {c: draw(st.lists(st.sampled_from(ACTIONS), max_size=3 * counts[c])) for c in companies}
    return Case(
        bills,
        faults,
        call_seconds=draw(st.sampled_from([0.0, 5.0, 12.0, 25.0])),
        restart_after=draw(st.sampled_from([LEASE + 1, LEASE / 3, LEASE * 0.8])),
    )


def kill_on_death(runtime: Runtime, life: Life) -> None:
    """A dead process's database calls fail: no outcome recorded, no lease given back."""
    real = runtime.engine.db.run

    async def run(fn: Any) -> Any:
        if life.dead:
            raise Crashed
        return await real(fn)

    runtime.engine.db.run = run  # type: ignore[method-assign]


async def play(case: Case, database_url: str, books_of: Any) -> Books:
    """Ingest the bills, then run the worker, crashing and restarting it, until all settle."""
    clock = FakeClock()
    books = Books()
    companies = sorted({c for c, _, _ in case.bills})
    config = make_config(
        *(sandbox_integration(c) for c in companies),
        worker=WorkerConfig(concurrency=2, lease_seconds=LEASE, poll_seconds=0.05),
        retry=RetryConfig(base_seconds=10, max_seconds=60, jitter=0, max_attempts=1000),
    )
    faults = {c: list(f) for c, f in case.faults.items()}
    env = make_env(database_url)

    async def start() -> tuple[Runtime, Life]:
        """A fresh process on the same database and ledgers."""
        life = Life()

        def connectors(cfg: Any) -> ChaosConnector:
            return ChaosConnector(cfg.name, books_of, faults[cfg.name], life, books, clock, case.call_seconds)

        runtime = await build_runtime(env, config, migrate=False, clock=clock, connectors=connectors)
        kill_on_death(runtime, life)
        return runtime, life

    runtime, life = await start()
    try:
        events = [
            bill(doc_id, integration=c, category="Unmapped" if fails else "Office supplies")
            for c, doc_id, fails in case.bills
        ]
        valid, errors = validate_batch({"events": events}, set(runtime.engine.integrations))
        assert not errors, errors
        await ingest_batch(runtime.engine, valid)
        for _ in range(MAX_ROUNDS):
            try:
                await runtime.worker.run_until_idle()
            except Crashed:
                pass
            if life.dead:
                life.dead = False  # only so close() can tidy up: the process is gone
                await runtime.close()
                clock.advance(case.restart_after)
                runtime, life = await start()
                continue
            async with runtime.db.sessions() as s:
                states = (await s.execute(select(Posting.state))).scalars().all()
            if all(state in ("synced", "failed") for state in states):
                return books
            clock.advance(STEP)  # a backoff or a dead process's lease running out
        raise AssertionError(f"not settled after {MAX_ROUNDS} rounds")
    finally:
        life.dead = False
        await runtime.close()


async def check(case: Case, database_url: str, books_of: Any) -> None:
    books = await play(case, database_url, books_of)
    db = connect(database_url)
    try:
        async with db.sessions() as s:
            rows = (
                await s.execute(select(Posting.idempotency_key, Posting.state, Posting.external_ref))
            ).all()
    finally:
        await db.dispose()
    by_key = {key: (state, ref) for key, state, ref in rows}
    keys = {doc_id: _key(c, doc_id) for c, doc_id, _ in case.bills}
    for company, doc_id, planted in case.bills:
        state, ref = by_key[keys[doc_id]]
        records = books_of.records(company, keys[doc_id])
        if planted:
            assert (state, records) == ("failed", []), f"{doc_id}: {state}, records {records}"
        else:
            # one record, the one the posting names: no duplicate, none lost
            assert state == "synced", f"{doc_id} ended {state}"
            assert records == [ref], f"{doc_id}: posting names {ref}, ledger holds {records}"
    for company in {c for c, _, _ in case.bills}:
        queue = [keys[d] for c, d, planted in case.bills if c == company and not planted]
        arrived = list(dict.fromkeys(books.arrivals.get(company, [])))
        assert arrived == queue, f"{company}: records reached the ledger out of queue order"
    assert books.overlaps == [], f"two writes of one company in flight at once: {books.overlaps}"


def _key(company: str, doc_id: str) -> str:
    from sync.vouchers import idempotency_key

    return idempotency_key(company, "ap", "bill", doc_id, "invoice")


class Databases:
    """A fresh, migrated database per drawn case."""

    def __init__(self, template: Path, tmp: Path):
        self.template, self.tmp, self.n = template, tmp, 0

    def sqlite(self) -> str:
        self.n += 1
        path = self.tmp / f"case-{self.n}.db"
        shutil.copy(self.template, path)
        return f"sqlite+aiosqlite:///{path}"


SETTINGS = dict(
    derandomize=True,
    deadline=None,
    # No shrinking: a failure is reported as drawn, within the time of the run; the
    # smallest cases found so far are the explicit examples below.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: found by this property on the code before issue 10: a crash before a write, restarted
#: when the company's lease had run out but the posting's had not -> the later bills of
#: co-1 reached the ledger before co-1-B002
CRASH_THEN_QUEUE_MOVES_ON = Case(
    bills=[
        ("co-0", "co-0-B000", True),
        ("co-1", "co-1-B000", True),
        ("co-2", "co-2-B000", True),
        ("co-1", "co-1-B001", False),
        ("co-1", "co-1-B002", False),
        ("co-1", "co-1-B003", False),
    ],
    faults={"co-0": [], "co-1": [OK, "crash_before"], "co-2": []},
    call_seconds=5.0,
    restart_after=20.0,
)
#: and: a write that timed out before the ledger stored it (outcome unknown) -> the queue
#: sent co-2-B001 before the retry of co-2-B000
UNKNOWN_OUTCOME_THEN_QUEUE_MOVES_ON = Case(
    bills=[
        ("co-0", "co-0-B000", True),
        ("co-1", "co-1-B000", True),
        ("co-2", "co-2-B000", False),
        ("co-2", "co-2-B001", False),
    ],
    faults={"co-0": [], "co-1": [], "co-2": ["timeout_before"]},
    call_seconds=0.0,
    restart_after=LEASE + 1,
)


@settings(max_examples=60, **SETTINGS)  # type: ignore[arg-type]
@example(case=CRASH_THEN_QUEUE_MOVES_ON)
@example(case=UNKNOWN_OUTCOME_THEN_QUEUE_MOVES_ON)
@given(case=cases())
async def test_crashes_and_faults_over_the_sandbox_ledger_on_sqlite(
    case: Case, sqlite_template: Path, tmp_path: Path
) -> None:
    await check(case, Databases(sqlite_template, tmp_path).sqlite(), SandboxBooks())


@settings(max_examples=10, **SETTINGS)  # type: ignore[arg-type]
@example(case=CRASH_THEN_QUEUE_MOVES_ON)
@given(case=cases(max_bills=6))
async def test_crashes_and_faults_over_the_sandbox_ledger_on_postgres(case: Case) -> None:
    need(bool(PG_URL), "TEST_DATABASE_URL is not set (PostgreSQL chaos property)")
    await check(case, await _pg_reset(), SandboxBooks())


@settings(max_examples=20, **SETTINGS)  # type: ignore[arg-type]
@example(case=UNKNOWN_OUTCOME_THEN_QUEUE_MOVES_ON)
@given(case=cases(max_bills=6))
async def test_crashes_and_http_faults_over_the_fake_economic_server(
    case: Case, sqlite_template: Path, tmp_path: Path
) -> None:
    """The real e-conomic connector over HTTP: the fake stores then answers 500/502/504 or
    drops the connection, or turns the write away (503, 504) before storing it."""
    books_of = EconomicBooks()
    await books_of.start(sorted({c for c, _, _ in case.bills}))
    try:
        await check(case, Databases(sqlite_template, tmp_path).sqlite(), books_of)
    finally:
        await books_of.stop()
