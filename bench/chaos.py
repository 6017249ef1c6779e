"""Chaos: SIGKILL ``python app.py serve`` N times while it syncs bills to a slow ledger.

For each database (a temporary SQLite file; PostgreSQL too with ``--postgres-url``, in a
database of its own that is dropped afterwards):

1. start, each in its own process on loopback, one slow fake e-conomic agreement per
   company (``bench/chaos_fakes.py ledger``: it records the order vouchers are stored in
   and the writes of one company in flight at once) and the fake Slack Web API
   (``bench/chaos_fakes.py slack``);
2. write a config file (one ``economic`` integration per company: a company is an
   integration, its ``company_key``), migrate, start ``app.py serve`` against them and
   send the bills through ``POST /api/v1/events`` (a few with a category no account is
   mapped for, so some failures are due as Slack alerts);
3. SIGKILL ``serve`` ``--kills`` times at seeded random moments while vouchers are being
   written (each time after the restarted process has written again), restarting it
   each time;
4. wait until every posting is synced or failed and the alerts are in (or the deadline),
   then read the ledger, the fake Slack and ``GET /api/v1/postings``.

Prints one JSON object: per database the documents sent, postings synced, duplicates
(vouchers beyond the first per idempotency key), lost (no voucher and not failed),
order inversions (vouchers stored after a later one of the same company), overlaps (two
writes of one company in flight at once), alerts due vs delivered, kills and wall time.
Every process it starts is stopped again, also on error or Ctrl-C.

    .venv/bin/python bench/chaos.py
    .venv/bin/python bench/chaos.py --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from chaos_processes import FINAL, ROOT, Processes, Serve, free_port, state_of, until  # bench/ is on sys.path
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sync.vouchers import idempotency_key

INGEST_TOKEN = "chaos-ingest-token"
BOT_TOKEN = "xoxb-test-token"  # what tests/fakes/slack.py accepts
SIGNING_SECRET = "chaos-signing-secret"
CHANNEL = "C0FINANCE"


@dataclass
class Plan:
    """What one run sends and does."""

    bills: int
    companies: int
    kills: int
    seed: int
    latency_ms: int
    failing: int
    deadline: float
    lease_seconds: int

    @property
    def names(self) -> list[str]:
        return [f"co-{n:02d}" for n in range(self.companies)]

    def bill_ids(self) -> list[tuple[str, int, str]]:
        """(company, position in its queue, document id), in the order they are sent."""
        names = self.names
        return [
            (names[n % len(names)], n // len(names), f"{names[n % len(names)]}-B{n // len(names):05d}")
            for n in range(self.bills)
        ]

    def failing_ids(self) -> set[str]:
        """Bills planted with an unmapped category, spread over companies and the queue."""
        ids = self.bill_ids()
        step = max(1, len(ids) // max(1, self.failing))
        return {ids[(k * step + k) % len(ids)][2] for k in range(min(self.failing, len(ids)))}


def bill_event(company: str, i: int, doc_id: str, category: str) -> dict[str, Any]:
    return {
        "source": "ap",
        "kind": "bill",
        "id": doc_id,
        "version": 1,
        "integration": company,
        "data": {
            "supplier": {"number": 3001, "name": "Kontorland A/S"},
            "invoice_number": f"INV-{doc_id}",
            "amount": f"{1000 + i}.50",
            "currency": "DKK",
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "category": category,
            "approved": True,
            "paid": None,
        },
    }


def config_toml(plan: Plan, ledgers: dict[str, str]) -> str:
    """ledgerops.toml: one e-conomic integration per company, short leases and backoff."""
    lines = [
        "[slack]",
        f'channel = "{CHANNEL}"',
        'allowed_users = ["U0ALICE"]',
        "[worker]",
        f"concurrency = {plan.companies}",
        f"lease_seconds = {plan.lease_seconds}",
        "poll_seconds = 0.2",
        f"call_timeout_seconds = {plan.lease_seconds / 2}",  # a call must end inside its lease
        "[scheduler]",
        "retry_seconds = 1",
        "stuck_seconds = 1",
        "[retry]",
        "base_seconds = 1",
        "max_seconds = 5",
        "max_attempts = 50",
    ]
    for name in plan.names:
        lines += [
            "[[integrations]]",
            f'name = "{name}"',
            'kind = "economic"',
            f'base_url = "{ledgers[name]}"',
            'app_secret_token = "env:CHAOS_APP_SECRET_TOKEN"',
            'agreement_grant_token = "env:CHAOS_AGREEMENT_GRANT_TOKEN"',
            "journal = 1",
            "payment_account = 5820",
            "[integrations.mappings.categories]",
            '"Office supplies" = 2800',
        ]
    return "\n".join(lines) + "\n"


# -- a run ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A database of our own on the server, dropped afterwards."""
    name = f"ledgerops_chaos_{os.getpid()}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()


async def kill_loop(plan: Plan, serve: Serve, ledger_writes: Any, deadline: float) -> list[float]:
    """SIGKILL serve at random moments while it writes; restart it each time."""
    rng = random.Random(plan.seed)
    began = time.monotonic()
    kills: list[float] = []
    for _ in range(plan.kills):
        # Kill while vouchers are being written: wait for a write of this process first.
        base = await ledger_writes()

        async def wrote(base: int = base) -> bool:
            return await ledger_writes() > base

        if not await until(wrote, deadline, 0.05):
            break
        if await serve.unsettled() == 0:
            break
        await asyncio.sleep(rng.uniform(0.05, 2.0))  # the random moment (seeded)
        await serve.kill()
        kills.append(round(time.monotonic() - began, 2))
        await serve.start(deadline)
    return kills


async def scenario(plan: Plan, database_url: str, tmp: Path) -> dict[str, Any]:
    procs = Processes()
    began = time.monotonic()
    deadline = began + plan.deadline
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "LEDGEROPS_INGEST_TOKEN": INGEST_TOKEN,
        "CHAOS_APP_SECRET_TOKEN": "fake-app-secret-7c1e0b44",
        "CHAOS_AGREEMENT_GRANT_TOKEN": "fake-agreement-grant-2d9a61f3",
    }
    for name in ("SLACK_APP_TOKEN", "LEDGEROPS_METRICS_TOKEN"):
        env.pop(name, None)
    fakes = [sys.executable, str(ROOT / "bench" / "chaos_fakes.py")]
    try:
        ledger = await procs.start(
            [*fakes, "ledger", "--latency-ms", str(plan.latency_ms), "--companies", *plan.names],
            env,
            tmp / "ledger.log",
            pipe=True,
        )
        slack = await procs.start([*fakes, "slack"], env, tmp / "slack.log", pipe=True)
        ledger_urls, slack_urls = await procs.announce(ledger), await procs.announce(slack)
        config = tmp / "ledgerops.toml"
        config.write_text(config_toml(plan, ledger_urls["ledgers"]), encoding="utf-8")
        env.update(
            LEDGEROPS_CONFIG=str(config),
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_urls["api"],
            PORT=str(free_port()),
        )
        migrate = await procs.start([sys.executable, str(ROOT / "app.py"), "migrate"], env, tmp / "serve.log")
        if await asyncio.wait_for(migrate.wait(), 120) != 0:
            raise RuntimeError(f"migrate failed; see {tmp / 'serve.log'}")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{env['PORT']}",
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
            timeout=30,
        ) as http:
            serve = Serve(procs, env, tmp / "serve.log", http)
            await serve.start(deadline)
            failing = plan.failing_ids()
            events = [
                bill_event(c, i, d, f"Unmapped {d}" if d in failing else "Office supplies")
                for c, i, d in plan.bill_ids()
            ]
            sent = await serve.ingest(events, deadline)

            async def ledger_writes() -> int:
                state = await state_of(http, ledger_urls["control"])
                return sum(len(c["arrivals"]) for c in state.values())

            kills = await kill_loop(plan, serve, ledger_writes, deadline)
            settled = await until(lambda: _settled(serve), deadline, 0.5)
            due = {p["document"]["id"] for p in await serve.postings() if p["state"] == "failed"}

            async def alerted() -> bool:
                return due <= _alerted(await state_of(http, slack_urls["control"]), due)

            # A failure's message waits out the grouping window, then the channel's pace.
            await until(alerted, min(deadline, time.monotonic() + 30 + len(due)), 0.5)
            postings = await serve.postings()
            figures = _figures(
                plan,
                postings,
                await state_of(http, ledger_urls["control"]),
                await state_of(http, slack_urls["control"]),
            )
            await procs.stop(serve.proc)
        return {
            "database": database_url.split(":", 1)[0].split("+")[0],
            "documents_sent": sent,
            **figures,
            "settled": bool(settled),
            "kills": len(kills),
            "kill_moments_s": kills,
            "serve_starts": serve.starts,
            "wall_seconds": round(time.monotonic() - began, 1),
        }
    finally:
        await procs.stop_all()


async def _settled(serve: Serve) -> bool:
    return await serve.unsettled() == 0


def _alerted(slack_state: dict[str, Any], ids: set[str]) -> set[str]:
    """The documents among ``ids`` some top-level Slack message names."""
    return {i for i in ids if any(i in post["text"] for post in slack_state["posts"])}


def _figures(
    plan: Plan, postings: list[dict[str, Any]], ledger: dict[str, Any], slack_state: dict[str, Any]
) -> dict[str, Any]:
    """Duplicates, lost, order, overlaps and alerts from what the fakes and the API hold."""
    state_by_doc = {p["document"]["id"]: p["state"] for p in postings}
    position: dict[str, tuple[str, int, str]] = {}
    for company, i, doc_id in plan.bill_ids():
        position[idempotency_key(company, "ap", "bill", doc_id, "invoice")] = (company, i, doc_id)
    records: dict[str, int] = {}
    inversions: dict[str, int] = {}
    for company, seen in ledger.items():
        records.update(seen["records"])
        latest, stored = -1, set()
        for key in seen["arrivals"]:
            if key in stored or key not in position:
                continue
            stored.add(key)
            i = position[key][1]
            if i < latest:
                inversions[company] = inversions.get(company, 0) + 1
            latest = max(latest, i)
    lost = [
        doc_id
        for key, (_c, _i, doc_id) in position.items()
        if records.get(key, 0) == 0 and state_by_doc.get(doc_id) != "failed"
    ]
    due = {d for d, s in state_by_doc.items() if s == "failed"}
    delivered = _alerted(slack_state, due)
    return {
        "postings": len(postings),
        "postings_synced": sum(1 for p in postings if p["state"] == "synced"),
        "postings_failed": len(due),
        "postings_unsettled": sum(1 for p in postings if p["state"] not in FINAL),
        "vouchers_in_ledger": sum(records.values()),
        "duplicates": sum(n - 1 for n in records.values() if n > 1),
        "lost": len(lost),
        "lost_examples": sorted(lost)[:5],
        "order_inversions": sum(inversions.values()),
        "order_inversions_by_company": dict(sorted(inversions.items())),
        "overlaps": sum(c["overlaps"] for c in ledger.values()),
        "max_writes_in_flight_per_company": max((c["max_in_flight"] for c in ledger.values()), default=0),
        "alerts_due": len(due),
        "alerts_delivered": len(delivered),
        "alerts_missing": len(due - delivered),
        "slack_top_level_messages": len(slack_state["posts"]),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bills", type=int, default=2000)
    parser.add_argument("--companies", type=int, default=10)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=int, default=40, help="per voucher write (default 40)")
    parser.add_argument("--failing", type=int, default=6, help="bills with an unmapped category")
    parser.add_argument("--lease-seconds", type=int, default=5, help="worker lease (default 5, the least)")
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds per database")
    parser.add_argument("--postgres-url", help="a PostgreSQL server (a database of its own is created)")
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    plan = Plan(
        bills=args.bills,
        companies=args.companies,
        kills=args.kills,
        seed=args.seed,
        latency_ms=args.latency_ms,
        failing=args.failing,
        deadline=args.deadline,
        lease_seconds=args.lease_seconds,
    )
    began = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ledgerops-chaos-") as tmp:
        if not args.skip_sqlite:
            (Path(tmp) / "sqlite").mkdir()
            runs.append(
                await scenario(plan, f"sqlite+aiosqlite:///{tmp}/sqlite/chaos.db", Path(tmp) / "sqlite")
            )
        if args.postgres_url:
            (Path(tmp) / "postgres").mkdir()
            async with postgres_database(args.postgres_url) as url:
                runs.append(await scenario(plan, url, Path(tmp) / "postgres"))
    targets = {k: 0 for k in ("duplicates", "lost", "order_inversions", "overlaps", "alerts_missing")}
    print(
        json.dumps(
            {
                "benchmark": "chaos",
                "bills": plan.bills,
                "companies": plan.companies,
                "kills": plan.kills,
                "seed": plan.seed,
                "ledger_latency_ms": plan.latency_ms,
                "targets": targets,
                "runs": runs,
                "targets_met": all(all(r[k] == 0 for k in targets) and r["settled"] for r in runs),
                "total_seconds": round(time.monotonic() - began, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
