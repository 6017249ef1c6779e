"""Ledgers for the chaos property (tests/test_chaos_property.py): faults and crashes on call.

:class:`ChaosConnector` wraps a company's real connector; each call meets the next
drawn action: success, a failure before the write takes effect, a failure after it
took effect, or a crash of the whole process (:class:`Life`) before or after the
ledger acted. It records, per company, the order records were stored in and whether
two writes of one company were ever in flight at once (:class:`Books`).
:class:`SandboxBooks` is the in-process sandbox ledger; :class:`EconomicBooks` the fake
e-conomic server on loopback, whose own switches make the faults, so the real
connector classifies real HTTP failures.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from connectors.base import (
    PostingRequest,
    PostingResult,
    RecordStatus,
    TransientError,
    UnknownOutcomeError,
)
from connectors.economic.client import EconomicConnector
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.ledger import SandboxLedger
from tests.fakes.economic_server import AGREEMENT_GRANT_TOKEN, APP_SECRET_TOKEN, FakeEconomic, problem
from tests.support import FakeClock

OK = "ok"
#: what a ledger call meets ("ok" first: hypothesis shrinks towards it)
ACTIONS = (
    OK,
    "refused_before",  # connection refused: nothing was stored
    "timeout_before",  # no answer in time, and the ledger never stored it
    "timeout_after",  # stored, then no answer in time
    "reset_after",  # stored, then the connection reset (an unclassified exception)
    "crash_before",  # the process dies before the ledger acts
    "crash_after",  # the ledger stored it, then the process died
)


class Crashed(Exception):
    """The process is gone: nothing it does from now on reaches the database or the ledger."""


@dataclass
class Life:
    """One process's life: once dead, its database calls fail."""

    dead: bool = False

    def die(self) -> None:
        self.dead = True


@dataclass
class Books:
    """What every ledger saw: records in arrival order per company, and writes in flight."""

    arrivals: dict[str, list[str]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    overlaps: list[str] = field(default_factory=list)


class ChaosConnector:
    """A connector over a company's ledger whose calls meet the drawn faults and crashes.

    ``ledger`` (the company's books, see :class:`SandboxBooks`) makes a fault itself
    where it can (the fake e-conomic answers 500 after storing, drops the connection …),
    so the real connector classifies what it gets; otherwise the fault is raised here,
    as the connector would raise it.
    """

    kind = "chaos"

    def __init__(
        self,
        company: str,
        books_of: Any,
        faults: list[str],
        life: Life,
        books: Books,
        clock: FakeClock,
        call_seconds: float,
    ):
        self.company, self.books_of, self.faults, self.life = company, books_of, faults, life
        self.books, self.clock, self.call_seconds = books, clock, call_seconds
        self.inner = books_of.connector(company)

    def supports(self, posting_kind: str) -> bool:
        return bool(self.inner.supports(posting_kind))

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def create(self, request: PostingRequest) -> PostingResult:
        return await self._call(self.inner.create, request, write=True)

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        return await self._call(self.inner.update, external_ref, request, write=True)

    async def find(self, request: PostingRequest) -> PostingResult | None:
        return await self._call(self.inner.find, request)

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        return await self._call(self.inner.status, external_ref, request)

    async def _call(self, op: Callable[..., Awaitable[Any]], *args: Any, write: bool = False) -> Any:
        if self.life.dead:
            raise Crashed
        action = self.faults.pop(0) if self.faults else OK
        self.clock.advance(self.call_seconds)  # the call takes time: leases age
        books = self.books
        books.in_flight[self.company] = books.in_flight.get(self.company, 0) + 1
        if write and books.in_flight[self.company] > 1:
            books.overlaps.append(self.company)
        try:
            if action == "crash_before":
                self.life.die()
                raise Crashed
            if write and action != OK and self.books_of.arm(self.company, action):
                return await op(*args)  # the ledger itself misbehaves
            if action == "refused_before":
                raise TransientError(
                    "Could not connect to the ledger (connection refused).", code="unreachable"
                )
            if action == "timeout_before" and write:
                raise UnknownOutcomeError("The ledger did not answer within 30 s.", code="timeout")
            result = await op(*args)
            if action == "timeout_after" and write:
                raise UnknownOutcomeError("The ledger did not answer within 30 s.", code="timeout")
            if action == "reset_after" and write:
                raise ConnectionResetError("Connection reset by peer")
            if action == "crash_after":
                self.life.die()
                raise Crashed
            return result
        finally:
            books.in_flight[self.company] -= 1
            seen = books.arrivals.setdefault(self.company, [])
            seen.extend(k for k in self.books_of.stored_keys(self.company) if k not in seen)


class SandboxBooks:
    """The in-process sandbox ledger of each company, kept across restarts."""

    def __init__(self) -> None:
        self.ledgers: dict[str, SandboxLedger] = {}

    def connector(self, company: str) -> Any:
        return SandboxConnector(self._of(company))

    def arm(self, company: str, action: str) -> bool:
        return False  # the sandbox has no switch for these: ChaosConnector raises them

    def stored_keys(self, company: str) -> list[str]:
        return [v.reference_key for v in self._of(company).vouchers.values()]

    def records(self, company: str, key: str) -> list[str]:
        return [v.ref for v in self._of(company).records_with_key(key)]

    def _of(self, company: str) -> SandboxLedger:
        return self.ledgers.setdefault(company, SandboxLedger(company))


class StoresThenFails(FakeEconomic):
    """The fake e-conomic, able to store a voucher and then answer 500, 502 or 504."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after_write: list[int] = []

    async def _after_write(self, request: web.Request, response: web.Response) -> web.Response:
        if self.fail_after_write:
            self.writes += 1
            return problem(self.fail_after_write.pop(0), "An internal error occurred.")
        return await super()._after_write(request, response)


class EconomicBooks:
    """One fake e-conomic agreement per company on loopback; the real connector talks HTTP."""

    def __init__(self) -> None:
        self.fakes: dict[str, StoresThenFails] = {}
        self._statuses = itertools.cycle((500, 502, 504))

    async def start(self, companies: list[str]) -> None:
        for company in companies:
            self.fakes[company] = StoresThenFails()
            await self.fakes[company].start()

    async def stop(self) -> None:
        for fake in self.fakes.values():
            await fake.stop()

    def connector(self, company: str) -> Any:
        return EconomicConnector(
            name=company,
            base_url=self.fakes[company].url,
            app_secret_token=APP_SECRET_TOKEN,
            agreement_grant_token=AGREEMENT_GRANT_TOKEN,
            payment_account=5820,
            timeout=5.0,
        )

    def arm(self, company: str, action: str) -> bool:
        """Make the next write fail at the ledger: before storing it, or after."""
        switches = self.fakes[company].switches
        if action == "refused_before":
            switches.fail_next, switches.fail_status = 1, 503  # turned away, nothing stored
        elif action == "timeout_before":
            switches.fail_next, switches.fail_status = 1, 504  # the gateway gave up first
        elif action == "timeout_after":
            switches.timeouts_after_write = 1  # stored, then the connection drops
        elif action == "reset_after":
            self.fakes[company].fail_after_write.append(next(self._statuses))  # stored, then 5xx
        else:
            return False
        return True

    def stored_keys(self, company: str) -> list[str]:
        fake = self.fakes[company]
        texts = [e.data.get("text", "") for e in sorted(fake.entries.values(), key=lambda e: e.number)]
        return [m for t in texts for m in re.findall(r"\[(LO-[0-9A-F]{16})\]", str(t))]

    def records(self, company: str, key: str) -> list[str]:
        fake = self.fakes[company]
        return [
            ref
            for ref, entries in fake.draft_vouchers().items()
            if any(f"[{key}]" in str(e.data.get("text", "")) for e in entries)
        ]
