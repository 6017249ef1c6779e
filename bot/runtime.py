"""Everything one running process holds: config, database, engine, worker.

``app.py`` builds one; tests build one against their own database and fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.config import ConfigFile, Environment
from connectors import registry
from connectors.base import Connector
from storage.db import Database, connect
from storage.migrate import upgrade_async
from sync.config import KIND_KEYS, IntegrationConfig, resolve_secret
from sync.engine import Clock, Engine, utcnow
from sync.policy import RetryPolicy
from sync.worker import Worker

log = logging.getLogger(__name__)

SECRET_KEYS = ("app_secret_token", "agreement_grant_token", "client_id", "client_secret",
               "api_key", "refresh_token")


def connector_for(cfg: IntegrationConfig) -> Connector:
    """Build an integration's connector, reading ``env:NAME`` credentials now."""
    settings = cfg.connector_settings()
    for key in SECRET_KEYS:
        if key in settings and key in KIND_KEYS[cfg.kind]:
            settings[key] = resolve_secret(settings[key], f"integrations[{cfg.name}].{key}")
    settings["payment_account"] = cfg.payment_account
    settings["fee_account"] = cfg.fee_account
    return registry.build(cfg.kind, cfg.name, settings)


@dataclass
class Runtime:
    """The pieces of one process, started and stopped together."""

    env: Environment
    config: ConfigFile
    db: Database
    engine: Engine
    worker: Worker
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    async def create(cls, env: Environment, config: ConfigFile, *, migrate: bool = True,
                     clock: Clock = utcnow,
                     connectors: Callable[[IntegrationConfig], Connector] = connector_for,
                     ) -> Runtime:
        """Open the database (migrating it), sync integrations, build engine and worker."""
        if migrate:
            await upgrade_async(env.database_url)
        db = connect(env.database_url)
        retry = config.retry
        engine = Engine(
            db, config.integrations, connectors,
            policy=RetryPolicy(retry.base_seconds, retry.max_seconds, retry.jitter,
                               retry.max_attempts),
            worker=config.worker, clock=clock,
        )
        await engine.setup()
        return cls(env=env, config=config, db=db, engine=engine, worker=Worker(engine))

    async def close(self) -> None:
        await self.worker.stop()
        await self.engine.aclose()
        await self.db.dispose()
