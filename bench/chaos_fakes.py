"""The fake services of ``bench/chaos.py``, each run as its own process on loopback.

    python bench/chaos_fakes.py ledger --companies 10 --latency-ms 40
    python bench/chaos_fakes.py slack

``ledger`` serves one fake e-conomic agreement per company (``tests/fakes/economic_server``)
whose voucher writes are slow: half the latency before the voucher is stored and half
after, so a SIGKILLed client leaves writes that land after it died as well as answers
it never read. It records, per company, the order vouchers were stored in and how many
writes of the company were in flight at once. ``slack`` serves the fake Slack Web API
(``tests/fakes/slack``, the stand-in's Web API). Each prints one JSON line with its URLs, including a
``control`` URL whose ``GET /state`` reports what it saw, and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web

from tests.fakes.economic_server import FakeEconomic
from tests.fakes.slack import FakeSlack

KEY = re.compile(r"\[(LO-[0-9A-F]{16})\]")


class SlowEconomic(FakeEconomic):
    """One company's agreement: slow voucher writes, arrival order and overlaps recorded."""

    def __init__(self, company: str, latency_ms: int):
        super().__init__()
        self.company = company
        self.half_latency = latency_ms / 2000
        self.arrivals: list[str] = []  # idempotency keys, in the order their vouchers were stored
        self.in_flight = 0
        self.max_in_flight = 0
        self.overlaps = 0  # voucher writes that began while another of this company was in flight

    async def _post_vouchers(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        if self.in_flight > 1:
            self.overlaps += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # aiohttp does not cancel a handler when its client goes away: a write sent just
            # before a SIGKILL is still stored after the latency, as a real ledger would.
            await asyncio.sleep(self.half_latency)
            before = set(self.entries)
            response = await super()._post_vouchers(request)
            for number in sorted(set(self.entries) - before):
                self.arrivals.extend(KEY.findall(str(self.entries[number].data.get("text", ""))))
            await asyncio.sleep(self.half_latency)
            return response
        finally:
            self.in_flight -= 1

    def records(self) -> dict[str, int]:
        """Vouchers per idempotency key (a duplicate shows as 2 or more)."""
        vouchers: dict[str, set[tuple[str, int]]] = {}
        for entry in self.entries.values():
            for key in KEY.findall(str(entry.data.get("text", ""))):
                vouchers.setdefault(key, set()).add((entry.year, entry.voucher_number))
        return {key: len(refs) for key, refs in vouchers.items()}

    def state(self) -> dict[str, Any]:
        return {
            "arrivals": self.arrivals,
            "records": self.records(),
            "writes": self.writes,
            "overlaps": self.overlaps,
            "max_in_flight": self.max_in_flight,
        }


async def _control(routes: dict[str, Any]) -> tuple[web.AppRunner, str]:
    async def state(_request: web.Request) -> web.Response:
        return web.json_response(routes["state"]())

    app = web.Application()
    app.router.add_get("/state", state)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_ledger(companies: list[str], latency_ms: int) -> None:
    """One slow fake e-conomic per company until signalled."""
    ledgers = {c: SlowEconomic(c, latency_ms) for c in companies}
    urls = {c: await ledger.start() for c, ledger in ledgers.items()}
    runner, control = await _control({"state": lambda: {c: lg.state() for c, lg in ledgers.items()}})
    print(json.dumps({"control": control, "ledgers": urls}), flush=True)
    try:
        await _until_signalled()
    finally:
        await runner.cleanup()
        for ledger in ledgers.values():
            await ledger.stop()


def slack_state(fake: FakeSlack) -> dict[str, Any]:
    """Top-level messages as they read now, and how many Web API calls came in."""
    return {
        "posts": [
            {"ts": ts, "text": json.dumps(msg, ensure_ascii=False)}
            for ts, msg in fake.messages.items()
            if not msg.get("thread_ts")
        ],
        "calls": len(fake.calls),
        "failed_calls": sum(1 for c in fake.calls if not c.ok),
    }


async def serve_slack() -> None:
    """The fake Slack Web API until signalled."""
    fake = FakeSlack()
    await fake.start()
    runner, control = await _control({"state": lambda: slack_state(fake)})
    print(json.dumps({"control": control, "api": fake.url}), flush=True)
    try:
        await _until_signalled()
    finally:
        await runner.cleanup()
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    ledger = sub.add_parser("ledger")
    ledger.add_argument("--companies", nargs="+", required=True)
    ledger.add_argument("--latency-ms", type=int, default=40)
    sub.add_parser("slack")
    args = parser.parse_args()
    if args.role == "ledger":
        asyncio.run(serve_ledger(args.companies, args.latency_ms))
    else:
        asyncio.run(serve_slack())


if __name__ == "__main__":
    main()
