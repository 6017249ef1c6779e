"""The sandbox ledgers of a process, by integration name.

The composition root makes one :class:`SandboxBooks` and hands it to the connector
factory and to the sandbox page: two runtimes given the same books share their
ledgers (a restart, a second replica), runtimes given their own books do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from connectors.sandbox.ledger import SandboxLedger
from connectors.sandbox.ledger_file import ledger_path, load_ledger, save_ledger


class SandboxBooks(Mapping[str, SandboxLedger]):
    """Sandbox ledgers by integration name; a ledger is opened with its connector.

    With a ``folder`` each ledger is kept in a file there (``sandbox-ledger-<name>.json``),
    read when it is opened and rewritten after every change, so books outlive the
    process; without one they live in memory only.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._ledgers: dict[str, SandboxLedger] = {}
        self.folder = folder

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
            if self.folder is not None:
                path = ledger_path(self.folder, name)
                load_ledger(ledger, path)
                ledger.on_change = lambda: save_ledger(ledger, path)
            self._ledgers[name] = ledger
        return ledger

    def save(self) -> None:
        """Write every ledger to its file now (switches set directly, then a clean stop)."""
        for ledger in self._ledgers.values():
            ledger.changed()

    def clear(self) -> None:
        """Forget every ledger (their integrations start on empty books)."""
        self._ledgers.clear()
