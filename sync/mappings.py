"""Mappings: source names (a bill's category, department, an order's payment method) -> ledger numbers.

A mapping a person sets with ``/ledger map`` is stored in the database and wins
over the config file. Setting one queues again the postings that failed because
it was missing: a failure names its missing mapping by structure (``error_code``
``unmapped_<kind>`` and ``error_cause`` the source value), never by its text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Database, Session
from storage.models import Activity, Mapping
from storage.queries.integrations import integration_id_of
from storage.queries.mappings import failed_for_missing, mapping_of, stored_mappings
from storage.queries.requeue import requeue_postings
from storage.states import PostingState
from sync.config import IntegrationConfig
from sync.vouchers import MappingLookup

CONFIG_TABLES = {"category": "categories", "department": "departments", "payment-method": "payment_methods"}


@dataclass(frozen=True)
class MappingSource:
    number: int | None
    origin: str  # "database" | "config" | "missing"
    set_by: str | None = None


class MappingBook:
    """Database mappings over config mappings, cached in memory."""

    def __init__(self, db: Database, configs: dict[str, IntegrationConfig]):
        self.db = db
        self.configs = configs
        self._stored: dict[tuple[str, str, str], tuple[int, str | None]] = {}

    async def load(self) -> None:
        """Read every stored mapping (start-up, and periodically on replicas)."""
        async with self.db.sessions() as s:
            rows = await stored_mappings(s)
        self._stored = {(m.integration, m.what, m.source): (m.number, m.set_by) for m in rows}

    def where(self, integration: str, what: str, source: str) -> MappingSource:
        """The number for ``source`` and where it comes from."""
        stored = self._stored.get((integration, what, source))
        if stored is not None:
            return MappingSource(stored[0], "database", stored[1])
        cfg = self.configs.get(integration)
        table = getattr(cfg.mappings, CONFIG_TABLES[what]) if cfg else {}
        number = table.get(source)
        return MappingSource(number, "config" if number is not None else "missing")

    def lookup(self, integration: str) -> MappingLookup:
        def find(what: str, source: str) -> int | None:
            return self.where(integration, what, source).number

        return find

    def listing(self, integration: str) -> list[tuple[str, str, MappingSource]]:
        """Every mapping of an integration with its origin, for ``status``."""
        cfg = self.configs[integration]
        keys = {(what, src) for what, table in CONFIG_TABLES.items() for src in getattr(cfg.mappings, table)}
        keys |= {(w, src) for (i, w, src) in self._stored if i == integration}
        return [(w, src, self.where(integration, w, src)) for w, src in sorted(keys)]

    async def set(
        self,
        s: Session,
        integration: str,
        what: str,
        source: str,
        number: int,
        actor: str | None,
        now: datetime,
    ) -> list[int]:
        """Store a mapping and queue again what failed for lack of it; returns those postings."""
        existing = await mapping_of(s, integration, what, source)
        if existing is None:
            s.add(
                Mapping(
                    integration=integration, what=what, source=source, number=number, set_by=actor, set_at=now
                )
            )
        else:
            existing.number, existing.set_by, existing.set_at = number, actor, now
        failed = await _requeue_unmapped(s, integration, what, source, actor, now)
        s.add(
            Activity(
                actor=actor,
                action="map",
                subject=f"integration:{integration}",
                at=now,
                outcome="ok",
                detail={"what": what, "source": source, "number": number, "requeued": len(failed)},
            )
        )
        self._stored[(integration, what, source)] = (number, actor)
        return failed


async def _requeue_unmapped(
    s: Session, integration: str, what: str, source: str, actor: str | None, now: datetime
) -> list[int]:
    """Queue again the failed postings that lacked exactly this mapping (kind and value)."""
    failed = await failed_for_missing(s, await integration_id_of(s, integration), f"unmapped_{what}", source)
    if failed:
        # the old failure stays readable until the next attempt replaces it
        await requeue_postings(s, failed, state=PostingState.FAILED, now=now, actor=actor, clear_error=False)
    return failed
