"""Demo documents for sandbox mode: a small company's bills and payroll, some failing on purpose.

Seeded on first start only (an empty database), then played as a short
script so each kind of problem reaches the channel the way it happens in real
life:

1. ordinary bills and a payroll run (with a correction for last month) sync;
2. two bills with the unmapped category "Travel" fail with one error (one
   grouped message) and a catering bill with another unmapped category fails on
   its own; its supplier's name contains ``<!channel>``, which must show as text;
3. a bill syncs, its voucher is booked in the ledger, then the supplier sends a
   changed version: the booked explanation appears instead of a resync button;
4. the ledger answers 503 once: that bill syncs on its retry (the panel's
   attempt list shows both tries);
5. the ledger goes unreachable and stays so: a freight bill fails after its
   retries, until someone turns the ledger back on and presses Resync.

Orders, refunds and debtors are not seeded: the engine does not turn them into
postings yet (only ``bill`` and ``payroll_run``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from bot.runtime import Runtime
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.ledger import SandboxLedger
from storage.models import Posting
from storage.queries import reads
from storage.states import PostingState
from sync.documents import validate_batch
from sync.ingest import ingest_batch

log = logging.getLogger(__name__)

SOURCE = "ap"  # the bill-pay system
PAYROLL_SOURCE = "payroll"
BOOKED_BILL = "B-1008"
RETRY_BILL = "B-1009"
OUTAGE_BILL = "B-1010"
OUTAGE_SUPPLIER = "DHL Express Denmark"
BUSY = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING)


def _bill(
    id_: str,
    supplier: tuple[int, str],
    amount: str,
    category: str,
    day: date,
    *,
    integration: str,
    version: int = 1,
    paid: bool = False,
    department: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "supplier": {"number": supplier[0], "name": supplier[1]},
        "invoice_number": f"INV-{id_.removeprefix('B-')}",
        "amount": amount,
        "currency": "DKK",
        "date": day.isoformat(),
        "due_date": (day + timedelta(days=30)).isoformat(),
        "category": category,
        "approved": True,
        "paid": {"date": (day + timedelta(days=2)).isoformat(), "amount": amount} if paid else None,
    }
    if department:
        data["department"] = department
    if text:
        data["text"] = text
    return {
        "source": SOURCE,
        "kind": "bill",
        "id": id_,
        "version": version,
        "integration": integration,
        "data": data,
    }


def first_batch(integration: str, today: date) -> list[dict[str, Any]]:
    """Everything that arrives at once on the first start, one demo story after another."""
    d = today.replace(day=1)
    return [
        *_everyday_bills(integration, d),
        _kantine_bill(integration, d),
        _booked_bill(integration, d),
        _payroll_run(integration, d),
    ]


def _everyday_bills(i: str, d: date) -> list[dict[str, Any]]:
    """The month's ordinary bills: paid and unpaid, with and without a department."""
    return [
        _bill("B-1001", (3001, "Kontorland A/S"), "1250.00", "Office supplies", d, integration=i),
        _bill(
            "B-1002",
            (3002, "Adobe Systems Software Ireland Ltd"),
            "449.00",
            "Software",
            d,
            integration=i,
            paid=True,
        ),
        _bill(
            "B-1003",
            (3003, "Ejendomsselskabet Havnegade ApS"),
            "18500.00",
            "Rent",
            d,
            integration=i,
            paid=True,
            department="Operations",
        ),
        _bill(
            "B-1004",
            (3004, "Nordic Freight ApS"),
            "2310.50",
            "Freight",
            d + timedelta(days=2),
            integration=i,
            department="Sales",
        ),
        _bill(
            "B-1005",
            (3005, "SAS Scandinavian Airlines"),
            "3890.00",
            "Travel",
            d + timedelta(days=3),
            integration=i,
            text="Flights Copenhagen-Oslo, sales visit",
        ),
        _bill("B-1006", (3006, "DSB"), "612.00", "Travel", d + timedelta(days=4), integration=i),
    ]


def _kantine_bill(i: str, d: date) -> dict[str, Any]:
    """A supplier name that would ping the whole channel if the bot did not escape it."""
    return _bill(
        "B-1007",
        (3007, "Kantine & Co <!channel>"),
        "1875.00",
        "Catering",
        d + timedelta(days=4),
        integration=i,
        paid=True,
    )


def _booked_bill(i: str, d: date) -> dict[str, Any]:
    """The bill whose voucher the demo books in the ledger before the supplier changes it."""
    return _bill(
        BOOKED_BILL,
        (3001, "Kontorland A/S"),
        "980.00",
        "Office supplies",
        d + timedelta(days=5),
        integration=i,
    )


def _payroll_run(i: str, d: date) -> dict[str, Any]:
    """This month's payroll run, with a correction booked in last month's period."""
    month, last = f"{d:%Y-%m}", f"{d - timedelta(days=1):%Y-%m}"
    return {
        "source": PAYROLL_SOURCE,
        "kind": "payroll_run",
        "id": f"PR-{month}",
        "version": 1,
        "integration": i,
        "data": {
            "run": f"PR-{month}",
            "date": (d + timedelta(days=6)).isoformat(),
            "company_is_test": False,
            "lines": [
                {"account": "4000", "amount": "96000.00", "period": month, "text": "Salaries"},
                {"account": "4020", "amount": "11520.00", "period": month, "text": "Pension"},
                {
                    "account": "6900",
                    "amount": "-107520.00",
                    "period": month,
                    "text": "Payroll liabilities",
                },
                # A correction of last month's holiday pay, booked in the month it concerns.
                {
                    "account": "4010",
                    "amount": "1200.00",
                    "period": last,
                    "text": "Holiday pay correction",
                },
                {
                    "account": "6900",
                    "amount": "-1200.00",
                    "period": last,
                    "text": "Holiday pay correction",
                },
            ],
        },
    }


class DemoScript:
    """Plays the demo against a running runtime (its worker must be running)."""

    def __init__(
        self,
        runtime: Runtime,
        integration: str,
        *,
        today: date | None = None,
        step_timeout: float = 120.0,
        poll_seconds: float = 0.1,
    ):
        self.runtime = runtime
        self.integration = integration
        self.today = today or date.today()
        self.step_timeout = step_timeout
        self.poll = poll_seconds
        self.step = "Seeding the demo documents…"
        self.finished = asyncio.Event()
        self.failed = False  # the script stopped early: ``step`` says so
        self._task: asyncio.Task[None] | None = None

    @property
    def ledger(self) -> SandboxLedger:
        """The integration's sandbox ledger (the script makes it misbehave)."""
        conn = self.runtime.engine.connector(self.integration)
        assert isinstance(conn, SandboxConnector)
        return conn.ledger

    def status(self) -> str | None:
        """What the script does now; ``None`` once it has played
        (``bot.local_slack.page_banner`` then reads the books)."""
        return None if self.finished.is_set() and not self.failed else self.step

    def start(self) -> asyncio.Task[None]:
        """Run the script in the background."""
        self._task = asyncio.create_task(self._run(), name="ledgerops-demo")
        return self._task

    async def stop(self) -> None:
        """Cancel the script if it still runs (shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        try:
            await self.play()
        except Exception:
            log.exception("the demo script stopped")
            self.failed = True
            self.step = "The demo script stopped early (see the log); everything else works."
        finally:
            self.finished.set()

    async def play(self) -> None:
        """The five steps of the module docstring, each after the previous settled."""
        i = self.integration
        await self.ingest(first_batch(i, self.today))
        await self.until(self.settled, "the first bills to be sent")

        self.step = "Booking a voucher in the ledger, then the supplier changes that bill…"
        ref = await self.external_ref(SOURCE, "bill", BOOKED_BILL, "invoice")
        self.ledger.book(ref)
        await self.ingest(
            [
                _bill(
                    BOOKED_BILL,
                    (3001, "Kontorland A/S"),
                    "1080.00",
                    "Office supplies",
                    self.today.replace(day=1) + timedelta(days=5),
                    integration=i,
                    version=2,
                )
            ]
        )
        await self.until(self.settled, "the changed bill to reach the booked voucher")

        self.step = "The ledger answers 503 once: the next bill syncs on its retry…"
        self.ledger.switches.fail_next = 1
        await self.ingest(
            [
                _bill(
                    RETRY_BILL,
                    (3008, "Telenor A/S"),
                    "399.00",
                    "Software",
                    self.today.replace(day=1) + timedelta(days=7),
                    integration=i,
                )
            ]
        )
        await self.until(self.settled, "the retried bill")

        self.step = "The ledger is now unreachable: the next bill retries, then gives up…"
        self.ledger.switches.outage = True
        await self.ingest(
            [
                _bill(
                    OUTAGE_BILL,
                    (3009, OUTAGE_SUPPLIER),
                    "1495.00",
                    "Freight",
                    self.today.replace(day=1) + timedelta(days=8),
                    integration=i,
                )
            ]
        )
        await self.until(
            lambda: self.state_is(SOURCE, "bill", OUTAGE_BILL, "invoice", PostingState.FAILED),
            "the outage bill to fail",
        )

    # -- helpers ----------------------------------------------------------------------------
    async def ingest(self, events: list[dict[str, Any]]) -> None:
        """Validate and store events, as the ingest API would."""
        valid, errors = validate_batch({"events": events}, set(self.runtime.engine.integrations))
        if errors:
            raise ValueError(f"demo event invalid: {errors[0]}")
        await ingest_batch(self.runtime.engine, valid)

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Wait for ``check()`` (the worker runs in the background), or give up loudly."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.step_timeout
        while not await check():
            if loop.time() > deadline:
                raise TimeoutError(f"demo: gave up waiting for {what}")
            await asyncio.sleep(self.poll)  # ok-sleep: the demo paces itself on the worker

    async def settled(self) -> bool:
        """Nothing of the integration is queued, in flight or retrying."""
        async with self.runtime.db.sessions() as s:
            busy = await reads.postings_in_states(
                s, self.runtime.engine.integration_ids[self.integration], [str(b) for b in BUSY]
            )
        return not busy

    async def _posting(self, source: str, kind: str, external_id: str, posting_kind: str) -> Posting | None:
        async with self.runtime.db.sessions() as s:
            return await reads.posting_of_document(s, source, kind, external_id, posting_kind)

    async def state_is(
        self, source: str, kind: str, external_id: str, posting_kind: str, state: PostingState
    ) -> bool:
        """Whether a document's posting is in ``state`` now."""
        p = await self._posting(source, kind, external_id, posting_kind)
        return p is not None and p.state == state

    async def external_ref(self, source: str, kind: str, external_id: str, posting_kind: str) -> str:
        """The voucher a document's posting got in the ledger."""
        p = await self._posting(source, kind, external_id, posting_kind)
        if p is None or not p.external_ref:
            raise ValueError(f"demo: {external_id} {posting_kind} has no voucher")
        return p.external_ref


async def has_documents(runtime: Runtime) -> bool:
    """Whether the database holds any document (then nothing is seeded)."""
    async with runtime.db.sessions() as s:
        return await reads.holds_documents(s)


async def start_demo(runtime: Runtime, **kwargs: Any) -> DemoScript | None:
    """Seed and play the demo on the first sandbox integration, if the database is empty."""
    name = next((n for n, c in runtime.engine.integrations.items() if c.kind == "sandbox"), None)
    if name is None or await has_documents(runtime):
        return None
    script = DemoScript(runtime, name, **kwargs)
    script.start()
    return script
