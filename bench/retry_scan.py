"""Retry scan: one retry sweep over 1,000,000 postings (1 % due), its query plans, and
memory while one bulk resync re-queues 100,000 postings.

For each database (a temporary SQLite file; PostgreSQL when a server URL is given or
TEST_DATABASE_URL is set, in a database of its own that is dropped afterwards):

1. seed 500,000 paid bills with an invoice and a payment posting each (1,000,000
   postings) straight into the tables (executemany on SQLite, COPY on PostgreSQL,
   secondary indexes built after the load, foreign-key triggers off during COPY);
   1 % are ``retrying`` and due, 1 % ``retrying`` later, 10 % ``failed``, the rest
   ``synced``, over 10 companies;
2. time the due query (what the sweep selects), the sweep itself
   (``storage.queries.postings.release_due_retries``, rolled back after each run so every
   run sees the same rows) and the due-companies query the worker runs next, with
   their plans (EXPLAIN / EXPLAIN QUERY PLAN), which must use ``ix_postings_state_due``;
3. re-queue the 100,000 failed postings with ``engine.resync_many`` and sample the
   process's resident memory every 20 ms meanwhile.

Prints JSON. ``--postings`` scales the scenario down for a quick look.

    .venv/bin/python bench/retry_scan.py
    .venv/bin/python bench/retry_scan.py --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retry_scan_data import (  # bench/ is on sys.path
    integration_configs,
    load_postgres,
    load_sqlite,
)
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import connect
from storage.migrate import upgrade_async
from storage.models import Posting
from storage.queries.postings import due_companies, release_due_retries
from storage.states import PostingState
from sync.bulk import BulkFilter, resync_many
from sync.config import IntegrationConfig
from sync.engine import Engine

INDEX = "ix_postings_state_due"
TARGET_MS = 50.0
TARGET_RSS_MB = 150.0
RUNS = 7


# -- memory ---------------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident memory now (VmRSS), in MB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (VmHWM / ru_maxrss), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Sampler:
    """Samples VmRSS every 20 ms in a thread while a block of work runs."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(rss_mb())

    def __enter__(self) -> Sampler:
        self.samples.append(rss_mb())
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mb())


# -- measuring ------------------------------------------------------------------------------


def timed(conn: Connection, fn: Callable[[Connection], Any], runs: int = RUNS) -> tuple[float, Any]:
    """Median milliseconds of ``fn`` over ``runs``, each in a savepoint rolled back after."""
    times, result = [], None
    for _ in range(runs):
        sp = conn.begin_nested()
        began = time.perf_counter()
        result = fn(conn)
        times.append((time.perf_counter() - began) * 1000)
        sp.rollback()
    return round(statistics.median(times), 2), result


def explain(conn: Connection, stmt: Any) -> list[str]:
    """The database's plan for a statement (binds rendered as literals)."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return [str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    return [str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN {sql}")]


def due_select(now: datetime) -> Any:
    return select(Posting.id).where(Posting.state == PostingState.RETRYING, Posting.next_attempt_at <= now)


def release_statement(now: datetime) -> Any:
    # the statement release_due_retries runs (for its plan)
    return (
        update(Posting)
        .where(Posting.state == PostingState.RETRYING, Posting.next_attempt_at <= now)
        .values(state=PostingState.PENDING, updated_at=now)
    )


def due_companies_statement(now: datetime) -> Any:
    """The same SELECT as ``storage.queries.postings.due_companies`` (for its plan)."""
    captured: list[Any] = []

    class Capture:
        def execute(self, stmt: Any, *_: Any) -> Any:
            captured.append(stmt)
            raise _Captured

    try:
        due_companies(Capture(), now, 8)  # type: ignore[arg-type]
    except _Captured:
        pass
    return captured[0]


class _Captured(Exception):
    pass


def sweep_figures(conn: Connection, now: datetime) -> dict[str, Any]:
    due_ms, due_ids = timed(conn, lambda c: c.execute(due_select(now)).scalars().all())
    sweep_ms, released = timed(conn, lambda c: release_due_retries(c, now))

    def release_then_companies(c: Connection) -> list[str]:
        release_due_retries(c, now)
        began = time.perf_counter()
        found = due_companies(c, now, 8)
        release_then_companies.ms.append((time.perf_counter() - began) * 1000)  # type: ignore[attr-defined]
        return found

    release_then_companies.ms = []  # type: ignore[attr-defined]
    _, found = timed(conn, release_then_companies)
    companies_ms = round(statistics.median(release_then_companies.ms), 2)  # type: ignore[attr-defined]
    sp = conn.begin_nested()
    release_due_retries(conn, now)
    plans = {
        "due_query": explain(conn, due_select(now)),
        "release_sweep": explain(conn, release_statement(now)),
        "due_companies": explain(conn, due_companies_statement(now)),
    }
    sp.rollback()
    return {
        "due_postings": len(due_ids),
        "due_query_ms": due_ms,
        "release_sweep_ms": sweep_ms,
        "released": released,
        "due_companies_ms": companies_ms,
        "due_companies_found": len(found),
        "plans": plans,
        "uses_index": {k: any(INDEX in line for line in v) for k, v in plans.items()},
    }


async def scenario(url: str, docs: int) -> dict[str, Any]:
    await upgrade_async(url)
    db = connect(url)
    engine = Engine(db, integration_configs(), connectors=_no_ledger)
    await engine.setup()
    now = datetime.now(UTC).replace(microsecond=0)
    engine.clock = lambda: now
    began = time.perf_counter()
    if db.is_sqlite:
        await db.run(lambda conn: load_sqlite(conn, docs, now, engine.integration_ids))
    else:
        await load_postgres(db, docs, now, engine.integration_ids)
    seeded = time.perf_counter() - began
    async with db.sessions() as s:
        total = int(await s.scalar(select(func.count()).select_from(Posting)) or 0)
    figures = await db.run(lambda conn: sweep_figures(conn, now))
    failed = await db.run(
        lambda conn: conn.execute(
            select(func.count()).select_from(Posting).where(Posting.state == PostingState.FAILED)
        ).scalar_one()
    )
    began = time.perf_counter()
    with Sampler() as mem:
        result = await resync_many(engine, BulkFilter(states=(PostingState.FAILED,)), "U0BENCH", chunk=500)
    resync_s = time.perf_counter() - began
    async with db.sessions() as s:
        pending = int(
            await s.scalar(
                select(func.count()).select_from(Posting).where(Posting.state == PostingState.PENDING)
            )
            or 0
        )
    await engine.aclose()
    await db.dispose()
    return {
        "database": url.split(":", 1)[0].split("+")[0],
        "postings": total,
        "seed_seconds": round(seeded, 1),
        **{k: v for k, v in figures.items()},
        "resync": {
            "failed_before": failed,
            "documents": result.documents,
            "queued": result.queued,
            "pending_after": pending,
            "seconds": round(resync_s, 1),
            "rss_mb_start": round(mem.samples[0], 1),
            "rss_mb_peak": round(max(mem.samples), 1),
            "rss_mb_end": round(mem.samples[-1], 1),
            "rss_mb_growth": round(mem.samples[-1] - mem.samples[0], 1),
        },
        "targets_met": {
            "due_query_under_50ms": figures["due_query_ms"] < TARGET_MS,
            "due_companies_under_50ms": figures["due_companies_ms"] < TARGET_MS,
            "plans_use_index": all(figures["uses_index"].values()),
            "rss_under_150mb": max(mem.samples) < TARGET_RSS_MB,
        },
    }


def _no_ledger(cfg: IntegrationConfig) -> Any:
    raise RuntimeError("the benchmark sends nothing to a ledger")


async def _pg_database(admin_url: str, name: str, create: bool) -> str:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        if create:
            await conn.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postings", type=int, default=1_000_000, help="postings to seed (two per bill; default 1,000,000)"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("TEST_DATABASE_URL"),
        help="a PostgreSQL server (a database of its own is created there)",
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    docs = args.postings // 2
    runs = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            runs.append(await scenario(f"sqlite+aiosqlite:///{tmp}/retry_scan.db", docs))
    if args.postgres_url:
        name = f"ledgerops_bench_{os.getpid()}"
        url = await _pg_database(args.postgres_url, name, create=True)
        try:
            runs.append(await scenario(url, docs))
        finally:
            await _pg_database(args.postgres_url, name, create=False)
    print(
        json.dumps(
            {
                "benchmark": "retry_scan",
                "targets": {
                    "due_query_ms": f"< {TARGET_MS:g} on both",
                    "plan": f"uses {INDEX}",
                    "rss_mb_while_resyncing_100k": f"< {TARGET_RSS_MB:g}",
                },
                "runs": runs,
                "process_peak_rss_mb": round(peak_rss_mb(), 1),
                "total_seconds": round(time.perf_counter() - began, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
