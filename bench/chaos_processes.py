"""The child processes of ``bench/chaos.py``: start and stop them, and ``app.py serve``
with a client for its HTTP API (health, ingest, postings)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
#: posting states that need nothing more from the worker
FINAL = frozenset({"synced", "failed", "booked", "ignored"})
#: events per ingest request
BATCH = 500


# -- processes ------------------------------------------------------------------------------


@dataclass
class Processes:
    """Every child process of a run, so all are stopped whatever happens."""

    children: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start(self, argv: list[str], env: dict[str, str], log: Path, *, pipe: bool = False) -> Any:
        with log.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE if pipe else err,
                stderr=err,
            )
        self.children.append(proc)
        return proc

    async def announce(self, proc: Any) -> dict[str, Any]:
        """The one JSON line a fake prints once it listens."""
        line = await asyncio.wait_for(proc.stdout.readline(), 30.0)
        if not line:
            raise RuntimeError(f"a fake exited before it listened (rc {await proc.wait()})")
        return json.loads(line)

    async def stop(self, proc: Any, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc in self.children:
            self.children.remove(proc)

    async def stop_all(self) -> None:
        for proc in list(reversed(self.children)):
            await self.stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(check: Any, deadline: float, every: float = 0.2) -> Any:
    """Poll ``check()`` until it is truthy or the deadline (monotonic) passes."""
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


# -- the serve process ----------------------------------------------------------------------


@dataclass
class Serve:
    """``app.py serve`` and a client for its HTTP API."""

    procs: Processes
    env: dict[str, str]
    log: Path
    http: httpx.AsyncClient
    proc: Any = None
    starts: int = 0

    async def start(self, deadline: float) -> None:
        argv = [sys.executable, str(ROOT / "app.py"), "serve", "--host", "127.0.0.1"]
        self.proc = await self.procs.start(argv, self.env, self.log)
        self.starts += 1

        async def healthy() -> bool:
            if self.proc.returncode is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}; see {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                return (await self.http.get("/healthz")).status_code == 200
            return False

        if not await until(healthy, deadline, 0.1):
            raise RuntimeError(f"serve did not answer /healthz; see {self.log}")

    async def kill(self) -> None:
        await self.procs.stop(self.proc, signal.SIGKILL)

    async def postings(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(10_000):
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = (await self.http.get("/api/v1/postings", params=params)).json()
            found.extend(page["postings"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        return found

    async def unsettled(self) -> int:
        """Postings not yet synced or failed (-1 when serve does not answer)."""
        try:
            return sum(1 for p in await self.postings() if p["state"] not in FINAL)
        except httpx.HTTPError:
            return -1

    async def ingest(self, events: list[dict[str, Any]], deadline: float) -> int:
        accepted = 0
        for start in range(0, len(events), BATCH):
            for _ in range(100):
                try:
                    answer = await self.http.post(
                        "/api/v1/events", json={"events": events[start : start + BATCH]}
                    )
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                answer.raise_for_status()
                accepted += len(answer.json()["accepted"])
                break
        return accepted


async def state_of(http: httpx.AsyncClient, control: str) -> Any:
    return (await http.get(f"{control}/state")).json()
