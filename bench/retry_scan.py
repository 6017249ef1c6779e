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
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import Database, connect
from storage.migrate import upgrade_async
from storage.models import Posting
from storage.queries.postings import due_companies, release_due_retries
from storage.states import PostingState
from sync.bulk import BulkFilter, resync_many
from sync.config import IntegrationConfig, Mappings
from sync.engine import Engine
from sync.vouchers import idempotency_key

COMPANIES = 10
INDEX = "ix_postings_state_due"
TARGET_MS = 50.0
TARGET_RSS_MB = 150.0
RUNS = 7

POSTING_COLUMNS = (
    "id",
    "document_id",
    "integration_id",
    "kind",
    "slot",
    "state",
    "desired_hash",
    "synced_hash",
    "external_ref",
    "idempotency_key",
    "attempts",
    "next_attempt_at",
    "company_key",
    "queued_at",
    "lookup_first",
    "force",
    "last_error",
    "error_code",
    "updated_at",
)
DOCUMENT_COLUMNS = (
    "id",
    "source",
    "kind",
    "external_id",
    "version",
    "integration_id",
    "status",
    "data",
    "doc_date",
    "received_at",
    "updated_at",
)


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


# -- the data -------------------------------------------------------------------------------


def companies() -> list[str]:
    return [f"co-{n:02d}" for n in range(COMPANIES)]


def integration_configs() -> list[IntegrationConfig]:
    return [
        IntegrationConfig(
            name=n,
            kind="sandbox",
            payment_account=5820,
            mappings=Mappings(categories={"Office supplies": 2800}),
        )
        for n in companies()
    ]


def bill_data(i: int) -> dict[str, Any]:
    return {
        "supplier": {"number": 3001, "name": "Kontorland A/S"},
        "invoice_number": f"INV-{i}",
        "amount": "1250.00",
        "currency": "DKK",
        "date": "2026-11-02",
        "due_date": "2026-12-02",
        "category": "Office supplies",
        "approved": True,
        "paid": {"date": "2026-11-20", "amount": "1250.00"},
    }


def state_of(doc: int, docs: int) -> str:
    """10 % of documents failed, 1 % retrying and due, 1 % retrying later, the rest synced."""
    share = doc * 100 // docs
    if share < 10:
        return PostingState.FAILED
    if share < 11:
        return "retrying_due"
    if share < 12:
        return PostingState.RETRYING
    return PostingState.SYNCED


def rows(
    docs: int, now: datetime, integration_ids: dict[str, int], *, sqlite: bool
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(document, [its two postings]) in the column orders above, one bill at a time.

    For SQLite, values come as the driver stores them (naive-UTC text, as
    ``storage.models.UTCDateTime`` writes them; JSON as text); PostgreSQL's COPY
    takes Python values (JSON as text too).
    """
    names = companies()
    created = now - timedelta(days=30)
    # the few timestamps, converted once (not a million times)
    stamp = {
        t: _sqlite_value(t) if sqlite else t
        for t in (created, now - timedelta(seconds=30), now + timedelta(minutes=10))
    }
    day = _sqlite_value(date(2026, 11, 2)) if sqlite else date(2026, 11, 2)
    for i in range(docs):
        company = names[i % COMPANIES]
        iid = integration_ids[company]
        doc_id = i + 1
        kind = state_of(i, docs)
        state = PostingState.RETRYING if kind == "retrying_due" else kind
        due = (
            now - timedelta(seconds=30)
            if kind == "retrying_due"
            else now + timedelta(minutes=10)
            if kind == PostingState.RETRYING
            else created
        )
        error = (
            "Could not connect to the ledger (connection refused)."
            if state == PostingState.RETRYING
            else "Account 2800 does not exist."
            if state == PostingState.FAILED
            else None
        )
        code = (
            None
            if error is None
            else "unreachable"
            if state == PostingState.RETRYING
            else "account_not_found"
        )
        synced = state == PostingState.SYNCED
        document = (
            doc_id,
            "ap",
            "bill",
            f"B-{i}",
            1,
            iid,
            "received",
            json.dumps(bill_data(i)),
            day,
            stamp[created],
            stamp[created],
        )
        postings = []
        for n, slot in enumerate(("invoice", "payment")):
            h = f"{i:032x}{n:032x}"
            postings.append(
                (
                    2 * i + n + 1,
                    doc_id,
                    iid,
                    slot,
                    slot,
                    str(state),
                    h,
                    h if synced else None,
                    f"2026-{i * 2 + n}" if synced else None,
                    idempotency_key(company, "ap", "bill", f"B-{i}", slot),
                    1,
                    stamp[due],
                    company,
                    stamp[created],
                    False,
                    False,
                    error,
                    code,
                    stamp[created],
                )
            )
        yield document, postings


# -- loading --------------------------------------------------------------------------------


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):  # stored naive UTC, as storage.models.UTCDateTime does
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict):
        return json.dumps(v)
    return v


def drop_indexes(conn: Connection) -> None:
    """A bulk load builds secondary indexes once at the end instead of row by row."""
    for ix in Posting.__table__.indexes:
        ix.drop(conn)


def create_indexes(conn: Connection) -> None:
    for ix in Posting.__table__.indexes:
        ix.create(conn)


def load_sqlite(conn: Connection, docs: int, now: datetime, ids: dict[str, int]) -> None:
    """executemany in chunks: the whole table never sits in memory."""
    drop_indexes(conn)
    dsql = (
        f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(DOCUMENT_COLUMNS))})"
    )
    psql = (
        f"INSERT INTO postings ({', '.join(POSTING_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(POSTING_COLUMNS))})"
    )
    dbuf: list[tuple[Any, ...]] = []
    pbuf: list[tuple[Any, ...]] = []
    for d, ps in rows(docs, now, ids, sqlite=True):
        dbuf.append(d)
        pbuf.extend(ps)
        if len(dbuf) >= 20_000:
            conn.exec_driver_sql(dsql, dbuf)
            conn.exec_driver_sql(psql, pbuf)
            dbuf, pbuf = [], []
    if dbuf:
        conn.exec_driver_sql(dsql, dbuf)
        conn.exec_driver_sql(psql, pbuf)
    create_indexes(conn)


async def load_postgres(db: Database, docs: int, now: datetime, ids: dict[str, int]) -> None:
    """COPY (asyncpg's binary copy) in chunks: the whole table never sits in memory."""
    async with db.engine.connect() as conn:
        await conn.run_sync(drop_indexes)
        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection
        # the rows are consistent by construction: skip the per-row foreign-key triggers
        # during the load (needs a superuser, as a bench database's owner usually is)
        await apg.execute("SET session_replication_role = replica")
        dbuf: list[tuple[Any, ...]] = []
        pbuf: list[tuple[Any, ...]] = []

        async def flush() -> None:
            await apg.copy_records_to_table("documents", records=dbuf, columns=DOCUMENT_COLUMNS)
            await apg.copy_records_to_table("postings", records=pbuf, columns=POSTING_COLUMNS)
            dbuf.clear()
            pbuf.clear()

        for d, ps in rows(docs, now, ids, sqlite=False):
            dbuf.append(d)
            pbuf.extend(ps)
            if len(dbuf) >= 20_000:
                await flush()
        if dbuf:
            await flush()
        await apg.execute("SET session_replication_role = DEFAULT")
        await apg.execute("SELECT setval('documents_id_seq', (SELECT max(id) FROM documents))")
        await apg.execute("SELECT setval('postings_id_seq', (SELECT max(id) FROM postings))")
        await conn.run_sync(create_indexes)
        await conn.commit()
        # autovacuum would do this a minute after a load like this; the plans assume it
        await apg.execute("ANALYZE documents")
        await apg.execute("ANALYZE postings")


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
