"""The engine: what the use cases share (config, database, clock, connectors, feed).

Every use case is one database transaction that moves state atomically; the
worker does the talking to ledgers. The use cases live by what a person does:
ingest (``sync/ingest.py``), resync/restart/ignore (``sync/resync.py``), bulk
resync (``sync/bulk.py``), an integration's switches (``sync/admin.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from connectors.base import Connector
from storage.db import Database
from storage.models import Integration
from storage.queries.integrations import all_integrations, release_auto_transfer_waits
from sync.changes import AttemptListener, ChangeFeed
from sync.config import IntegrationConfig, WorkerConfig
from sync.mappings import MappingBook
from sync.planner import Eligibility
from sync.policy import RetryPolicy
from sync.vouchers import MappingLookup

Clock = Callable[[], datetime]
ConnectorFactory = Callable[[IntegrationConfig], Connector]


def utcnow() -> datetime:
    """The time now, in UTC (the engine's default clock)."""
    return datetime.now(UTC)


#: why a posting waits (``error_code`` of a waiting posting)
WAIT_AUTO_OFF = "auto_transfer_off"
WAIT_HISTORY = "before_history_start"


class UnknownIntegration(LookupError):
    """No integration of that name in the config."""

    def __init__(self, name: str, known: list[str]):
        super().__init__(f"No integration named '{name}'. Configured: {', '.join(known) or 'none'}.")
        self.name = name


class Engine:
    """What every use case works with: config, database, clock, connectors, change feed.

    The use cases are functions taking it first: ``sync/ingest.py``,
    ``sync/resync.py``, ``sync/bulk.py``, ``sync/admin.py``.
    """

    def __init__(
        self,
        db: Database,
        integrations: Sequence[IntegrationConfig],
        connectors: ConnectorFactory,
        *,
        policy: RetryPolicy | None = None,
        worker: WorkerConfig | None = None,
        clock: Clock = utcnow,
        feed: ChangeFeed | None = None,
    ):
        self.db = db
        self.integrations = {cfg.name: cfg for cfg in integrations}
        self._connector_factory = connectors
        self._connectors: dict[str, Connector] = {}
        self.policy = policy or RetryPolicy()
        self.worker_config = worker or WorkerConfig()
        self.clock = clock
        self.feed = feed or ChangeFeed()
        self.integration_ids: dict[str, int] = {}
        self._wakers: list[Callable[[], None]] = []
        self.mapping_book = MappingBook(db, self.integrations)
        #: called after every attempt (metrics); must not raise or block
        self.attempt_listeners: list[AttemptListener] = []

    # -- wiring ---------------------------------------------------------------------------
    async def setup(self) -> None:
        """Make the integrations table match the config; release what auto-transfer now allows."""
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            rows = {r.name: r for r in await all_integrations(s)}
            for cfg in self.integrations.values():
                row = rows.get(cfg.name)
                if row is None:
                    row = Integration(
                        name=cfg.name, kind=cfg.kind, created_at=now, paused=False, quota_used=0
                    )
                    s.add(row)
                row.kind = cfg.kind
                row.settings = cfg.public_settings()
                row.auto_transfer = cfg.auto_transfer
                row.history_start = cfg.history_start
                row.monthly_quota = cfg.monthly_quota
            await s.flush()
            self.integration_ids = {r.name: r.id for r in await all_integrations(s)}
            on = [self.integration_ids[c.name] for c in self.integrations.values() if c.auto_transfer]
            if on:
                await release_auto_transfer_waits(s, on, WAIT_AUTO_OFF, now)
        await self.mapping_book.load()

    def on_work(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` whenever new work is queued (the in-process worker listens)."""
        self._wakers.append(waker)

    def wake(self) -> None:
        """Tell the in-process worker that work may be due (after a use case or a sweep)."""
        for waker in self._wakers:
            waker()

    def connector(self, integration: str) -> Connector:
        """The (cached) connector of an integration."""
        conn = self._connectors.get(integration)
        if conn is None:
            conn = self._connector_factory(self.integrations[integration])
            self._connectors[integration] = conn
        return conn

    def mappings(self, integration: str) -> MappingLookup:
        """Database mappings first, then the config file's."""
        return self.mapping_book.lookup(integration)

    def rules(self, integration: str) -> Eligibility:
        """When the integration sends on its own (auto-transfer, history start, statuses)."""
        cfg = self.integrations[integration]
        return Eligibility(cfg.auto_transfer, cfg.history_start, tuple(cfg.ready_statuses))

    def known(self, integration: str) -> None:
        """Raise :class:`UnknownIntegration` unless ``integration`` is configured."""
        if integration not in self.integrations:
            raise UnknownIntegration(integration, sorted(self.integrations))

    async def aclose(self) -> None:
        """Close every connector this engine opened."""
        for conn in self._connectors.values():
            await conn.aclose()
        self._connectors.clear()
