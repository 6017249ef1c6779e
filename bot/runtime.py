"""Everything one running process holds: config, database, engine, worker.

``app.py`` builds one; tests build one against their own database and fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bot.config import ConfigError, ConfigFile, Environment
from bot.logs import remember_secret
from bot.metrics import Metrics
from bot.notifier import Notifier
from bot.outbox_pace import OutboxSettings
from bot.scheduler import Scheduler, Sweeps
from bot.slack import SlackBot, build_slack_bot
from connectors import registry
from connectors.base import Connector
from connectors.sandbox.books import SandboxBooks
from storage.credentials import DatabaseTokenStore, SecretKeyError, secret_key_from_env
from storage.db import Database, connect
from storage.migrate import upgrade_async
from sync.config import IntegrationConfig, resolve_secret
from sync.engine import Clock, Engine, utcnow
from sync.policy import RetryPolicy
from sync.worker import Worker

log = logging.getLogger(__name__)


def connector_for(
    cfg: IntegrationConfig, db: Database | None = None, sandbox_books: SandboxBooks | None = None
) -> Connector:
    """Build an integration's connector, reading ``env:NAME`` credentials now.

    Exact rotates its refresh token on every use: it gets a token store on the
    database (encrypted with ``LEDGEROPS_SECRET_KEY``) so a restart keeps access.
    A sandbox integration's ledger lives in ``sandbox_books`` (new books if none given).
    """
    settings = cfg.connector_settings()
    if cfg.kind == "sandbox":
        settings["books"] = SandboxBooks() if sandbox_books is None else sandbox_books
    if cfg.kind == "exact":
        if db is None:
            raise ConfigError(f"integrations[{cfg.name}]: Exact needs the database for its refresh token")
        try:
            key = secret_key_from_env()
        except SecretKeyError as exc:
            raise ConfigError(str(exc)) from None
        settings["token_store"] = DatabaseTokenStore(db, cfg.name, key)
    for key in cfg.connector.credential_keys():
        if key in settings:
            settings[key] = resolve_secret(settings[key], f"integrations[{cfg.name}].{key}")
            remember_secret(settings[key])  # masked in the logs and in Slack from now on
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
    #: the sandbox ledgers of this runtime's sandbox integrations (shared when handed in)
    sandbox_books: SandboxBooks = field(default_factory=SandboxBooks)
    #: the Slack side; ``None`` without a bot token (sandbox mode)
    slack: SlackBot | None = None
    notifier: Notifier | None = None
    scheduler: Scheduler | None = None
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    async def create(
        cls,
        env: Environment,
        config: ConfigFile,
        *,
        migrate: bool = True,
        clock: Clock = utcnow,
        connectors: Callable[[IntegrationConfig], Connector] | None = None,
        outbox: OutboxSettings | None = None,
        sandbox_books: SandboxBooks | None = None,
    ) -> Runtime:
        """Open the database (migrating it), sync integrations, build engine and worker,
        and with a bot token the bolt app and the Slack notifier.

        Sandbox integrations keep their ledgers in ``sandbox_books``: pass the same books
        to runtimes that should share them; without, this runtime gets its own."""
        if migrate:
            await upgrade_async(env.database_url)
        db = connect(env.database_url)
        books = SandboxBooks() if sandbox_books is None else sandbox_books
        retry = config.retry
        engine = Engine(
            db,
            config.integrations,
            connectors or partial(connector_for, db=db, sandbox_books=books),
            policy=RetryPolicy(retry.base_seconds, retry.max_seconds, retry.jitter, retry.max_attempts),
            worker=config.worker,
            clock=clock,
        )
        await engine.setup()
        runtime = cls(
            env=env, config=config, db=db, engine=engine, worker=Worker(engine), sandbox_books=books
        )
        engine.attempt_listeners.append(runtime.metrics.observe_attempt)
        runtime.slack = build_slack_bot(env, config, clock)
        sweeps = Sweeps(engine, config.scheduler)
        if runtime.slack is not None:
            notifier = Notifier(engine, runtime.slack.outbox_client, config.slack.channel, outbox)
            notifier.call_listeners.append(runtime.metrics.observe_slack_call)
            runtime.notifier = notifier
            # Only a process that can post runs the digest: a claim without Slack would
            # take the day's digest away from a replica that could have posted it.
            sweeps.digest_time = config.slack.digest_time
            sweeps.digest_channel = config.slack.channel or next(
                (i.channel for i in config.integrations if i.channel), None
            )
            sweeps.channel_of = notifier.channel_of
            sweeps.poke = notifier.poke
        runtime.scheduler = Scheduler(sweeps)
        runtime.scheduler.listeners.append(runtime.metrics.observe_job)
        return runtime

    async def start(self) -> None:
        """Start the worker, the scheduler, the Slack notifier and (Socket Mode) Slack."""
        self.worker.start()
        if self.scheduler is not None:
            self.scheduler.start()
        if self.notifier is not None:
            await self.notifier.start()
        if self.slack is not None:
            await self.slack.start()

    async def close(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.slack is not None:
            await self.slack.stop()  # no new clicks; the ones in flight finish
        if self.notifier is not None:
            await self.notifier.stop()
        await self.worker.stop()
        if self.slack is not None:
            await self.slack.aclose()
        await self.engine.aclose()
        await self.db.dispose()
