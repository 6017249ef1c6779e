"""Ack latency of button clicks while the worker syncs 10,000 postings in the background.

The server process runs ledgerops (worker, Slack outbox, bolt on ``/slack/events``)
on a temporary SQLite database with the sandbox ledger, plus, on a second port of
the same process under the same load, a bare bolt ``AsyncApp`` that only acks.
A separate clicker process sends rounds of 50 concurrent signed ``block_actions``
requests to each and times every one to its HTTP 200. Prints JSON.

    .venv/bin/python bench/ack_latency.py                 # 10,000 postings, 10 rounds
    .venv/bin/python bench/ack_latency.py --postings 2000 --rounds 4

Targets: p99 <= 1.5 x the bare app's p99, and p99 < 100 ms. Any answer but 200
aborts the run. The fake Slack Web API and the clicker run in their own processes,
so only the server's work is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from app import build_runtime
from bot.actions import ActionId, PostingRef
from bot.config import ConfigFile, Environment, SlackConfig
from bot.runtime import Runtime
from handlers.routes import build_web_app
from storage.migrate import upgrade_async
from storage.models import Activity, Posting
from sync.config import IntegrationConfig, Mappings, WorkerConfig
from sync.documents import validate_batch
from sync.ingest import ingest_batch
from tests.slack_harness import BOT_TOKEN, SIGNING_SECRET, FakeSlack, click_body, signed_headers

CLICKS = 50
USER = "U0ALICE"


def bill_event(company: str, i: int, category: str = "Office supplies") -> dict[str, Any]:
    return {
        "source": "ap",
        "kind": "bill",
        "id": f"{company}-{category[:3]}-{i}",
        "version": 1,
        "integration": company,
        "data": {
            "supplier": {"number": 3001, "name": "Kontorland A/S"},
            "invoice_number": f"INV-{i}",
            "amount": "1250.00",
            "currency": "DKK",
            "date": "2026-11-02",
            "due_date": "2026-12-02",
            "category": category,
            "approved": True,
            "paid": None,
        },
    }


async def ingest(runtime: Runtime, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        valid, errors = validate_batch(
            {"events": events[start : start + 1000]}, set(runtime.engine.integrations)
        )
        assert not errors, errors[:3]
        await ingest_batch(runtime.engine, valid)


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/slack/events"


def bare_app(api_url: str) -> web.Application:
    """A bolt app that only acks: the floor any bolt app on this machine pays."""
    bolt = AsyncApp(
        client=AsyncWebClient(token=BOT_TOKEN, base_url=api_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=True,
    )

    @bolt.action(re.compile(".*"))
    async def only_ack(ack: Any) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    return app


async def synced(runtime: Runtime) -> int:
    async with runtime.db.sessions() as s:
        return int(
            await s.scalar(select(func.count()).select_from(Posting).where(Posting.state == "synced")) or 0
        )


async def run(postings: int, rounds: int, companies: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/ack.db"
        await upgrade_async(url)
        fake_url, fake = await fake_slack()
        names = [f"co-{n:02d}" for n in range(companies)]
        config = ConfigFile(
            slack=SlackConfig(channel="C0FINANCE", allowed_users=[USER]),
            worker=WorkerConfig(concurrency=companies, poll_seconds=0.05),
            integrations=[
                IntegrationConfig(
                    name=n,
                    kind="sandbox",
                    payment_account=5820,
                    mappings=Mappings(categories={"Office supplies": 2800}),
                )
                for n in names
            ],
        )
        env = Environment(
            database_url=url,
            slack_bot_token=SecretStr(BOT_TOKEN),
            slack_signing_secret=SecretStr(SIGNING_SECRET),
            slack_api_url=fake_url,
        )
        runtime = await build_runtime(env, config, migrate=False)
        try:
            # 50 bills fail (no mapping for "Travel"): the buttons people will press
            await ingest(runtime, [bill_event(names[0], i, "Travel") for i in range(CLICKS)])
            await runtime.worker.run_until_idle()
            async with runtime.db.sessions() as s:
                failed = (
                    await s.execute(select(Posting.id, Posting.document_id).where(Posting.state == "failed"))
                ).all()
            values = [PostingRef(document=d, posting=p).value() for p, d in failed]
            assert len(values) == CLICKS, len(values)
            await ingest(runtime, [bill_event(names[i % companies], i) for i in range(postings)])
            ours_runner, ours = await serve(build_web_app(runtime))
            bare_runner, bare = await serve(bare_app(fake_url))
            async with aiohttp.ClientSession() as warm:  # auth.test, connection set-up
                for target in (ours, bare):
                    body = click_body(ActionId.SHOW_LOG, values[0], user=USER)
                    await (await warm.post(target, data=body, headers=signed_headers(body))).read()
            await runtime.slack.idle()  # type: ignore[union-attr]
            await runtime.start()  # the background: worker (and the Slack outbox)
            before = await synced(runtime)
            began = time.perf_counter()
            latencies = await clicker({"ours": ours, "bare": bare, "values": values, "rounds": rounds})
            measured = time.perf_counter() - began
            during = await synced(runtime) - before
            await runtime.slack.idle()  # type: ignore[union-attr]
            async with runtime.db.sessions() as s:
                resyncs = await s.scalar(
                    select(func.count()).select_from(Activity).where(Activity.action == "resync")
                )
            await runtime.worker.stop()
            remaining = postings - await synced(runtime)
            await ours_runner.cleanup()
            await bare_runner.cleanup()
        finally:
            await runtime.close()
            fake.terminate()
            await fake.wait()
    ours_s, bare_s = summary(latencies["ours"]), summary(latencies["bare"])
    ratio = round(ours_s["p99_ms"] / bare_s["p99_ms"], 2) if bare_s["p99_ms"] else None
    return {
        "benchmark": "ack_latency",
        "database": "sqlite",
        "background": {
            "postings": postings,
            "companies": companies,
            "synced_while_clicking": during,
            "still_to_sync_after": remaining,
            "clicking_seconds": round(measured, 2),
        },
        "clicks": {"concurrent": CLICKS, "rounds": rounds, "resyncs_recorded": resyncs},
        "ledgerops": ours_s,
        "bare_bolt": bare_s,
        "p99_ratio_to_bare": ratio,
        "targets": {"p99_ratio_to_bare": "<= 1.5", "p99_ms": "< 100"},
        "pass": bool(ratio is not None and ratio <= 1.5 and ours_s["p99_ms"] < 100),
    }


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "samples": len(ordered),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
    }


async def fake_slack() -> tuple[str, asyncio.subprocess.Process]:
    """The fake Slack Web API in its own process: Slack's work is not the server's."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--fake-slack", stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    return url, proc


async def serve_fake_slack() -> None:
    fake = FakeSlack()
    await fake.start()
    print(fake.url, flush=True)
    await asyncio.Event().wait()  # until terminated


async def clicker(job: dict[str, Any]) -> dict[str, list[float]]:
    """Run the clicks in another process, so the client's work is not the server's."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--clicker", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate(json.dumps(job).encode())
    assert proc.returncode == 0, "clicker failed"
    return json.loads(out)


async def click_rounds(job: dict[str, Any]) -> dict[str, list[float]]:
    """Clicker side: rounds of 50 concurrent signed clicks to each app, alternating.

    Raw HTTP/1.1 on 50 kept-alive connections per app: each request is written
    in one go and timed from that write to the last byte of the answer, so the
    client's own overhead stays out of the figures.
    """
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    values: list[str] = job["values"]
    links = {
        name: [await asyncio.open_connection(*_host_port(job[name])) for _ in values]
        for name in ("ours", "bare")
    }

    async def one(name: str, link: tuple[Any, Any], raw: bytes) -> float:
        reader, writer = link
        started = time.perf_counter()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"{name} answered {status}")
        return elapsed

    for n in range(job["rounds"]):
        order = ("ours", "bare") if n % 2 == 0 else ("bare", "ours")
        for name in order:
            raws = [_request(job[name], click_body(ActionId.RESYNC_INVOICE, v, user=USER)) for v in values]
            times[name] += await asyncio.gather(
                *(one(name, link, raw) for link, raw in zip(links[name], raws, strict=True))
            )
            await asyncio.sleep(0.2)  # ok-sleep: let the round's work start, like real clicks
    for conns in links.values():
        for _, writer in conns:
            writer.close()
    return times


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    return host, int(port)


def _request(url: str, body: str) -> bytes:
    host, port = _host_port(url)
    headers = signed_headers(body)
    lines = [
        "POST /slack/events HTTP/1.1",
        f"Host: {host}:{port}",
        f"Content-Length: {len(body.encode())}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postings", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--companies", type=int, default=4)
    parser.add_argument("--clicker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fake-slack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_slack:
        asyncio.run(serve_fake_slack())
        return
    if args.clicker:
        print(json.dumps(asyncio.run(click_rounds(json.loads(sys.stdin.read())))))
        return
    logging.disable(logging.WARNING)
    print(json.dumps(asyncio.run(run(args.postings, args.rounds, args.companies)), indent=2))


if __name__ == "__main__":
    main()
