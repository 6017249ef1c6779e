"""Exact Online pacing: N postings for C companies against the fake limited to 60 calls/minute.

Each company has its own connector and division; postings go one at a time per
company (as the worker sends them), companies in parallel; the engine is not
involved. Time is scaled (the fake and the connectors share one
:class:`ScaledTime`; the fake runs in its own process so client and server get a
core each), so a "minute" lasts 60/scale real seconds. Prints JSON: calls per
minute used against the allowance per company, and every 429.

    .venv/bin/python bench/ratelimit.py                    # 2,000 postings, 5 companies, x15
    .venv/bin/python bench/ratelimit.py --scale 30 --postings 1000

"Used per minute" counts the calls in every complete window and divides by the
time from the first window's start to the last window's start, so the seconds
between a reset and the next call (the connector's safety margin) count against
it. Target: >= 95 % of the allowance and zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from connectors.base import RateLimitedError
from connectors.exact.client import ExactConnector
from tests.connectors.harness import invoice_request
from tests.fakes.exact_server import (
    ExactFake,
    MemoryTokenStore,
    ScaledTime,
)

ROOT = Path(__file__).resolve().parent.parent
CLIENT_ID, CLIENT_SECRET = "exact-client", "exact-secret"  # the fake's defaults


async def _company(
    base_url: str, clock: ScaledTime, division: int, refresh_token: str, postings: int, limited: list[float]
) -> float:
    """Send one company's postings one at a time; returns the seconds it waited to pace."""
    conn = ExactConnector(
        f"bench-{division}",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        token_store=MemoryTokenStore(),
        division=division,
        refresh_token=refresh_token,
        base_url=base_url,
        timeout=30.0,
        clock=clock.clock,
        sleep=clock.sleep,
        max_wait=120.0,
    )
    try:
        for n in range(postings):
            request = replace(
                invoice_request(f"LO-B{division}{n:06d}", currency="EUR"), company_key=str(division)
            )
            while True:
                try:
                    await conn.create(request)
                    break
                except RateLimitedError as exc:  # should not happen; counted and honoured
                    limited.append(exc.retry_after or 1.0)
                    await clock.sleep(exc.retry_after or 1.0)
    finally:
        await conn.aclose()
    return conn.pacer.waited


def _report(stats: dict[str, Any], limit: int, waited: float) -> dict[str, Any]:
    windows = stats["windows"]
    full = windows[:-1]
    span = (windows[-1][0] - windows[0][0]) / 60 if len(windows) > 1 else 0.0
    used = sum(count for _start, count in full) / span if span else float(stats["calls"])
    return {
        "calls": stats["calls"],
        "windows": len(windows),
        "calls_per_full_window": [count for _start, count in full],
        "calls_per_minute_used": round(used, 2),
        "calls_per_minute_allowed": limit,
        "utilisation": round(used / limit, 4),
        "rejected_429": stats["rejected"],
        # > 0: the connector held calls back for the reset (pacing, not a slow machine)
        "paced_wait_scaled_seconds": round(waited, 1),
    }


class _Server:
    """The fake, in this process or in its own (so client and server use two cores)."""

    def __init__(self, divisions: list[int], clock: ScaledTime, limit: int, apart: bool):
        self.divisions, self.clock, self.limit, self.apart = divisions, clock, limit, apart
        self.fake: ExactFake | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""

    async def __aenter__(self) -> _Server:
        if not self.apart:
            self.fake = ExactFake(
                divisions={d: f"Company {d}" for d in self.divisions},
                time_source=self.clock,
                minutely_limit=self.limit,
            )
            self.base_url = await self.fake.start()
            return self
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.exact_server",
            "--scale",
            str(self.clock.scale),
            "--epoch0",
            repr(self.clock._epoch0),
            "--real0",
            repr(self.clock._real0),
            "--divisions",
            ",".join(map(str, self.divisions)),
            "--limit",
            str(self.limit),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), 30)
        self.base_url = line.decode().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the fake Exact server did not start")
        return self

    async def refresh_token(self, division: int) -> str:
        if self.fake is not None:
            return self.fake.issue_refresh_token(division)
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            resp = await http.post("/_fake/refresh_token", params={"division": division})
            return str(resp.json()["refresh_token"])

    async def stats(self) -> dict[str, Any]:
        if self.fake is not None:
            return self.fake.stats()
        async with httpx.AsyncClient(base_url=self.base_url) as http:
            return dict((await http.get("/_fake/stats")).json())

    async def __aexit__(self, *exc: object) -> None:
        if self.fake is not None:
            await self.fake.stop()
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the fake stops when its stdin closes
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def run(postings: int, companies: int, scale: float, limit: int, apart: bool = True) -> dict[str, Any]:
    """Run the scenario; returns the JSON-ready report."""
    divisions = [101 + n for n in range(companies)]
    clock = ScaledTime(scale)
    limited: list[float] = []
    async with _Server(divisions, clock, limit, apart) as server:
        tokens = {d: await server.refresh_token(d) for d in divisions}
        started_real, started_scaled = time.perf_counter(), clock.clock()
        per_company = postings // companies
        waits = await asyncio.gather(
            *(_company(server.base_url, clock, d, tokens[d], per_company, limited) for d in divisions)
        )
        real = time.perf_counter() - started_real
        scaled_minutes = (clock.clock() - started_scaled) / 60
        stats = await server.stats()
    report = {str(d): _report(stats[str(d)], limit, w) for d, w in zip(divisions, waits, strict=True)}
    total_429 = sum(d["rejected_429"] for d in report.values()) + len(limited)
    worst = min(d["utilisation"] for d in report.values())
    return {
        "scenario": {
            "postings": postings,
            "companies": companies,
            "time_scale": scale,
            "limit_per_minute": limit,
            "real_seconds_per_scaled_minute": round(60 / scale, 3),
            "fake_in_own_process": apart,
        },
        "companies": report,
        "total_calls": sum(d["calls"] for d in report.values()),
        "total_429s": total_429,
        "rate_limited_errors_raised": len(limited),
        "elapsed_real_seconds": round(real, 2),
        "elapsed_scaled_minutes": round(scaled_minutes, 2),
        "min_utilisation": worst,
        "target_met": worst >= 0.95 and total_429 == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--postings", type=int, default=2000)
    parser.add_argument("--companies", type=int, default=5)
    parser.add_argument(
        "--scale",
        type=float,
        default=15.0,
        help="how many times faster than real time the fake runs (a slow "
        "machine that cannot serve 5 x 60 calls per scaled minute "
        "shows as windows below the limit with no paced wait)",
    )
    parser.add_argument("--limit", type=int, default=60, help="calls per minute per company")
    parser.add_argument(
        "--in-process", action="store_true", help="run the fake in this process (needs a fast machine)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(
        run(args.postings, args.companies, args.scale, args.limit, apart=not args.in_process)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
