"""A sandbox ledger's books on disk: one JSON file per ledger, rewritten after each change.

Sandbox mode keeps the file next to its SQLite database, so a restart finds the
vouchers (numbers, booked state, the next number) the database says were posted.
Only the lasting switches are kept (unreachable, latency); one-shot ones such as
"fail the next call" are not.
"""

from __future__ import annotations

import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.base import RecordStatus
from connectors.sandbox.ledger import SandboxLedger, Voucher

FORMAT = 1


def ledger_path(folder: Path, name: str) -> Path:
    """Where ``name``'s ledger lives in ``folder``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return folder / f"sandbox-ledger-{safe}.json"


def save_ledger(ledger: SandboxLedger, path: Path) -> None:
    """Write the ledger's books to ``path`` (a new file moved into place: never half written)."""
    state = {
        "format": FORMAT,
        "name": ledger.name,
        "next_number": ledger.next_number,
        "outage": ledger.switches.outage,
        "latency_ms": ledger.switches.latency_ms,
        "vouchers": [_voucher_json(v) for v in ledger.vouchers.values()],
        "relations": [_voucher_json(v) for v in ledger.relations.values()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(part, path)


def load_ledger(ledger: SandboxLedger, path: Path) -> bool:
    """Fill ``ledger`` from ``path``; ``False`` when there is no such file yet."""
    if not path.exists():
        return False
    state = json.loads(path.read_text(encoding="utf-8"))
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a sandbox ledger file of format {FORMAT}")
    ledger.vouchers = {v.ref: v for v in map(_voucher, state["vouchers"])}
    ledger.relations = {v.ref: v for v in map(_voucher, state["relations"])}
    ledger.next_number = int(state["next_number"])
    ledger.switches.outage = bool(state.get("outage", False))
    ledger.switches.latency_ms = int(state.get("latency_ms", 0))
    return True


def _voucher_json(v: Voucher) -> dict[str, Any]:
    return {
        "ref": v.ref,
        "kind": v.kind,
        "reference_key": v.reference_key,
        "date": v.date.isoformat(),
        "amount": str(v.amount),  # exact: a Decimal never passes through a float
        "text": v.text,
        "account": v.account,
        "supplier": v.supplier,
        "status": v.status.value,
        "revision": v.revision,
        "body": v.body,
    }


def _voucher(raw: dict[str, Any]) -> Voucher:
    body = dict(raw.get("body") or {})
    if "lines" in body:  # JSON has no tuples: the lines come back as lists
        body["lines"] = [tuple(line) for line in body["lines"]]
    return Voucher(
        ref=str(raw["ref"]),
        kind=str(raw["kind"]),
        reference_key=str(raw["reference_key"]),
        date=date.fromisoformat(raw["date"]),
        amount=Decimal(raw["amount"]),
        text=str(raw["text"]),
        account=raw.get("account"),
        supplier=raw.get("supplier"),
        status=RecordStatus(raw["status"]),
        revision=int(raw.get("revision", 1)),
        body=body,
    )
