"""A sandbox for tests: the real sandbox start-up on a test database, a free port, quick pacing.

Used by the browser tests and by ``tests/test_local_slack.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from app import build_runtime
from bot.config import Environment
from bot.local_slack import SandboxServer, start_sandbox
from bot.outbox.pace import OutboxSettings
from bot.sandbox.settings import sandbox_config, sandbox_environment
from handlers.routes import build_web_app

#: the outbox's waits shrunk so a test sees the channel in a second, not in ten
FAST_OUTBOX = OutboxSettings(group_window=0.3, post_interval=0.1, poll_seconds=0.5, coalesce_seconds=0.02)
FAST_DEMO: dict[str, Any] = {"poll_seconds": 0.02, "step_timeout": 60.0}


@asynccontextmanager
async def open_sandbox(
    database_url: str, *, seed: bool = True, extra_commands: Sequence[str] = ()
) -> AsyncIterator[SandboxServer]:
    """``python app.py``'s sandbox, on ``database_url`` and port 0, closed afterwards."""
    env = sandbox_environment(Environment(database_url=database_url))
    server = await start_sandbox(
        env,
        sandbox_config(retry_seconds=0.2),
        build_runtime,
        build_web_app,
        port=0,
        seed=seed,
        outbox=FAST_OUTBOX,
        demo=FAST_DEMO,
        extra_commands=extra_commands,
    )
    try:
        yield server
    finally:
        await server.close()
