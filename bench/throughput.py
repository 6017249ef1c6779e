"""Sync throughput: N companies x M bills through the sandbox ledger with a set latency.

Prints JSON: postings/s, engine overhead per posting, and the ratio to the bound
the ledger allows (companies / latency: one posting in flight per company).

    .venv/bin/python bench/throughput.py                # both standard scenarios, SQLite
    .venv/bin/python bench/throughput.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text

from app import build_runtime
from bot.config import ConfigFile, Environment
from connectors.sandbox.books import SandboxBooks
from storage.migrate import upgrade_async
from storage.models import Posting
from sync.config import IntegrationConfig, Mappings, WorkerConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch


def bill_event(company: str, i: int) -> dict[str, Any]:
    return {
        "source": "ap",
        "kind": "bill",
        "id": f"{company}-{i}",
        "version": 1,
        "integration": company,
        "data": {
            "supplier": {"number": 3001, "name": "Kontorland A/S"},
            "invoice_number": f"INV-{i}",
            "amount": "1250.00",
            "currency": "DKK",
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "category": "Office supplies",
            "approved": True,
            "paid": None,
        },
    }


async def _reset_postgres(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


async def scenario(url: str, companies: int, bills: int, latency_ms: int) -> dict[str, Any]:
    books = SandboxBooks()
    if url.startswith("postgresql"):
        await _reset_postgres(url)
    await upgrade_async(url)
    names = [f"co-{n:03d}" for n in range(companies)]
    config = ConfigFile(
        worker=WorkerConfig(concurrency=max(companies, 1), poll_seconds=0.05),
        integrations=[
            IntegrationConfig(
                name=n,
                kind="sandbox",
                latency_ms=latency_ms,
                mappings=Mappings(categories={"Office supplies": 2800}),
            )
            for n in names
        ],
    )
    runtime = await build_runtime(Environment(database_url=url), config, migrate=False, sandbox_books=books)
    try:
        events = [bill_event(n, i) for i in range(bills) for n in names]
        for start in range(0, len(events), 1000):
            valid, errors = validate_batch(
                {"events": events[start : start + 1000]}, set(runtime.engine.integrations)
            )
            assert not errors, errors[:3]
            await ingest_batch(runtime.engine, valid)
        total = companies * bills
        began = time.perf_counter()
        await runtime.worker.run_until_idle()
        elapsed = time.perf_counter() - began
        async with runtime.db.sessions() as s:
            synced = await s.scalar(
                select(func.count()).select_from(Posting).where(Posting.state == "synced")
            )
        vouchers = sum(len(books[n].vouchers) for n in names)
    finally:
        await runtime.close()
    rate = total / elapsed
    per_company_serial_ms = elapsed / bills * 1000  # one in flight per company
    result: dict[str, Any] = {
        "database": url.split(":", 1)[0],
        "companies": companies,
        "bills_per_company": bills,
        "ledger_latency_ms": latency_ms,
        "postings": total,
        "synced": synced,
        "vouchers_in_ledger": vouchers,
        "seconds": round(elapsed, 3),
        "postings_per_s": round(rate, 1),
        "engine_overhead_ms_per_posting": round(max(per_company_serial_ms - latency_ms, 0.0), 3)
        if latency_ms
        else round(1000 / rate, 3),
    }
    if latency_ms:
        bound = companies / (latency_ms / 1000)
        result["bound_postings_per_s"] = round(bound, 1)
        result["ratio_to_bound"] = round(rate / bound, 3)
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--companies", type=int)
    parser.add_argument("--bills", type=int)
    parser.add_argument("--latency-ms", type=int)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:

        def url(tag: str) -> str:
            return args.database_url or f"sqlite+aiosqlite:///{tmp}/{tag}.db"

        if args.companies or args.bills or args.latency_ms is not None:
            runs = [
                await scenario(url("custom"), args.companies or 10, args.bills or 100, args.latency_ms or 0)
            ]
        else:
            runs = [
                await scenario(url("zero"), 10, 500, 0),
                await scenario(url("latency"), 20, 50, 100),
            ]
    targets = {
        "zero_latency_postings_per_s": ">= 1000 (SQLite)",
        "latency_100ms_20_companies_ratio_to_bound": ">= 0.90",
    }
    print(json.dumps({"benchmark": "throughput", "targets": targets, "runs": runs}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
