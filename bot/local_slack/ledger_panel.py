"""The page's ledger panel: what the sandbox ledger holds, and switches to make it misbehave.

Not part of Slack: it is the far side of the bot (the ledger), shown next to
the channel so a person can make it unreachable or slow, book a voucher, and
watch the bot's retries, outage messages and booked explanations follow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.runtime import Runtime
from connectors.base import RecordStatus
from connectors.sandbox.connector import SandboxConnector
from connectors.sandbox.ledger import SandboxLedger, Voucher
from storage.queries import figures

SHOWN_VOUCHERS = 12
SHOWN_ATTEMPTS = 10
MAX_LATENCY_MS = 10_000


class PanelError(ValueError):
    """A request the panel cannot carry out; ``str()`` says why."""


class LedgerPanel:
    """Reads and switches the sandbox ledgers of a runtime's integrations."""

    def __init__(self, runtime: Runtime, demo_status: Callable[[], Awaitable[str | None]] | None = None):
        self.runtime = runtime
        self.demo_status = demo_status

    def names(self) -> list[str]:
        """Integrations that run on a sandbox ledger."""
        return [n for n, cfg in self.runtime.engine.integrations.items() if cfg.kind == "sandbox"]

    def ledger(self, name: str) -> SandboxLedger:
        """The integration's ledger (created with its connector if the bot has not yet)."""
        if name not in self.names():
            raise PanelError(f"no sandbox integration named {name!r}")
        conn = self.runtime.engine.connector(name)
        assert isinstance(conn, SandboxConnector)
        return conn.ledger

    async def snapshot(self) -> dict[str, Any]:
        """Everything the panel shows, as JSON-ready data."""
        ledgers = []
        for name in self.names():
            ledgers.append({**self._ledger_view(name), **await self._queue_view(name)})
        # rebuilt on every look: the banner follows what people did (page_banner.py)
        demo = await self.demo_status() if self.demo_status is not None else None
        return {"ledgers": ledgers, "demo": demo}

    def _ledger_view(self, name: str) -> dict[str, Any]:
        ledger = self.ledger(name)
        sw = ledger.switches
        vouchers = sorted(ledger.vouchers.values(), key=lambda v: v.ref)[-SHOWN_VOUCHERS:]
        return {
            "name": name,
            "reachable": not sw.outage,
            "latency_ms": sw.latency_ms,
            "fail_next": sw.fail_next,
            "vouchers": [
                {
                    "ref": v.ref,
                    "kind": v.kind,
                    "date": v.date.isoformat(),
                    "text": v.text,
                    "amount": f"{_voucher_amount(v):,.2f}",
                    "booked": v.status is RecordStatus.BOOKED,
                }
                for v in reversed(vouchers)
            ],
            "voucher_count": len(ledger.vouchers),
        }

    async def _queue_view(self, name: str) -> dict[str, Any]:
        integration_id = self.runtime.engine.integration_ids.get(name)
        async with self.runtime.db.sessions() as s:
            counts = await figures.postings_of_integration_by_state(s, integration_id)
            rows = await figures.newest_attempts_of_integration(s, name, SHOWN_ATTEMPTS)
            retrying = await figures.next_retry_of_integration(s, integration_id)
        return {
            "postings": {str(k): int(v) for k, v in counts.items()},
            "next_retry": _iso(retrying),
            "attempts": [
                {
                    "at": _iso(a.finished_at or a.started_at),
                    "document": f"{doc_kind} {doc_id}",
                    "posting": posting_kind,
                    "trigger": a.trigger,
                    "outcome": a.outcome,
                    "message": a.message,
                    "ref": a.external_ref,
                }
                for a, posting_kind, doc_kind, doc_id in rows
            ],
        }

    def apply(self, name: str, op: str, value: Any) -> None:
        """One switch: ``reachable`` (bool), ``latency_ms`` (int), ``fail_next`` (int),
        ``book`` (voucher ref)."""
        ledger = self.ledger(name)
        if op == "reachable":
            ledger.switches.outage = not bool(value)
        elif op == "latency_ms":
            ms = _int(value)
            if not 0 <= ms <= MAX_LATENCY_MS:
                raise PanelError(f"latency must be 0 to {MAX_LATENCY_MS} ms")
            ledger.switches.latency_ms = ms
        elif op == "fail_next":
            n = _int(value)
            if not 0 <= n <= 10:
                raise PanelError("fail_next must be 0 to 10")
            ledger.switches.fail_next = n
        elif op == "book":
            if str(value) not in ledger.vouchers:
                raise PanelError(f"no voucher {value} in {name}")
            ledger.book(str(value))
        else:
            raise PanelError(f"unknown switch {op!r}")
        ledger.changed()  # kept beside the database: a restart keeps the switches too
        self.runtime.engine.wake()  # a reachable ledger again: let due retries go now


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PanelError(f"{value!r} is not a whole number") from None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _voucher_amount(v: Voucher) -> Decimal:
    """A journal kept before its amount was its debit total (older sandbox files) shows that too."""
    if v.amount or not v.body.get("lines"):
        return v.amount
    return sum((Decimal(str(a)) for _, a in v.body["lines"] if Decimal(str(a)) > 0), Decimal(0))
