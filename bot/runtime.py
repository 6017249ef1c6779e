"""Everything one running process holds: config, database, engine, worker, Slack.

The composition root (``app.py``'s :func:`build_runtime`) builds one; tests build
one the same way against their own database and fakes. This module only holds
the pieces and starts and stops them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from bot.config import ConfigFile, Environment
from bot.ops.metrics import Metrics
from bot.ops.scheduler import Scheduler
from bot.outbox.notifier import Notifier
from bot.outbox.pace import OutboxSettings
from bot.slack import SlackBot
from connectors.sandbox.books import SandboxBooks
from storage.db import Database
from sync.engine import Engine
from sync.worker import Worker


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


class RuntimeFactory(Protocol):
    """How the sandbox server asks the composition root (``app.build_runtime``) for a runtime."""

    async def __call__(
        self,
        env: Environment,
        config: ConfigFile,
        *,
        outbox: OutboxSettings | None = None,
        sandbox_books: SandboxBooks | None = None,
    ) -> Runtime: ...
