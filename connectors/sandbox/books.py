"""The sandbox ledgers of a process, by integration name.

The composition root makes one :class:`SandboxBooks` and hands it to the connector
factory and to the sandbox page: two runtimes given the same books share their
ledgers (a restart, a second replica), runtimes given their own books do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.sandbox.ledger import SandboxLedger


class SandboxBooks(Mapping[str, SandboxLedger]):
    """Sandbox ledgers by integration name; a ledger is opened with its connector."""

    def __init__(self) -> None:
        self._ledgers: dict[str, SandboxLedger] = {}

    def __getitem__(self, name: str) -> SandboxLedger:
        return self._ledgers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ledgers)

    def __len__(self) -> int:
        return len(self._ledgers)

    def open(self, name: str, settings: Mapping[str, Any]) -> SandboxLedger:
        """``name``'s ledger, made from its config keys (``accounts``, ``suppliers``,
        ``latency_ms``) if these books do not hold it yet."""
        ledger = self._ledgers.get(name)
        if ledger is None:
            ledger = SandboxLedger(
                name,
                accounts={str(k): str(v) for k, v in (settings.get("accounts") or {}).items()},
                suppliers={str(k): str(v) for k, v in (settings.get("suppliers") or {}).items()},
                latency_ms=int(settings.get("latency_ms") or 0),
            )
            self._ledgers[name] = ledger
        return ledger

    def clear(self) -> None:
        """Forget every ledger (their integrations start on empty books)."""
        self._ledgers.clear()
