"""What every kind's ledger request needs: idempotency keys and mappings.

Each kind (``sync/kinds/``) builds its own :class:`PostingRequest`.

Mappings turn the source's words (a bill's category, department) into ledger
numbers. A missing mapping is a "needs a person" failure naming the value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sync.config import IntegrationConfig
from sync.errors import MappingMissing

#: (what, source value) -> ledger number or None; the database's mappings come first
MappingLookup = Callable[[str, str], int | None]


def idempotency_key(integration: str, source: str, kind: str, external_id: str, slot: str) -> str:
    """A short, stable key stored in the ledger record so a retry can find it."""
    raw = "\x1f".join((integration, source, kind, external_id, slot))
    return "LO-" + hashlib.sha256(raw.encode()).hexdigest()[:16].upper()


def config_mappings(cfg: IntegrationConfig) -> MappingLookup:
    """Look mappings up in the config file only."""
    tables = {
        "category": cfg.mappings.categories,
        "department": cfg.mappings.departments,
        "payment-method": cfg.mappings.payment_methods,
    }

    def lookup(what: str, value: str) -> int | None:
        return tables.get(what, {}).get(value)

    return lookup


def mapped(lookup: MappingLookup, cfg: IntegrationConfig, what: str, value: str) -> str:
    """The ledger number ``value`` maps to; :class:`MappingMissing` naming it if none."""
    number = lookup(what, value)
    if number is None:
        raise MappingMissing(what, value, cfg.name)
    return str(number)
