"""Sandbox mode's server: the bot and the Slack stand-in on one aiohttp application.

The listening socket is bound first, so the stand-in's address (and with it
``SLACK_API_URL``) is known before the bot's Web API client is built; port 0
works too (tests), with no race for a free port.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.config import ConfigError, ConfigFile, Environment
from bot.local_slack.page_banner import demo_banner
from bot.local_slack.stand_in import LocalSlack
from bot.outbox.pace import OutboxSettings
from bot.runtime import Runtime, RuntimeFactory
from bot.sandbox.demo import DemoScript, start_demo
from bot.sandbox.settings import SANDBOX_HOST, local_slack_environment, sandbox_data_folder
from connectors.sandbox.books import SandboxBooks

#: the channel fills in seconds, not after the production grouping window
SANDBOX_OUTBOX = OutboxSettings(group_window=2.0, post_interval=0.5, poll_seconds=1.0)


@dataclass
class SandboxServer:
    """A running sandbox: close it to stop everything it started."""

    runtime: Runtime
    slack: LocalSlack
    runner: web.AppRunner
    url: str
    demo: DemoScript | None = None

    async def close(self) -> None:
        """Stop the demo, the page streams and the server, then the bot."""
        if self.demo is not None:
            await self.demo.stop()
        await self.runner.cleanup()
        await self.runtime.close()
        self.runtime.sandbox_books.save()  # switches the demo or the panel set directly
        self.slack.save()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; :class:`ConfigError` naming PORT when taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"PORT: cannot listen on {host}:{port} ({exc.strerror or exc}); set PORT to a free port"
        ) from None
    return sock


async def start_sandbox(
    env: Environment,
    config: ConfigFile,
    build_runtime: RuntimeFactory,
    web_app: Callable[[Runtime], web.Application],
    *,
    port: int | None = None,
    seed: bool = True,
    outbox: OutboxSettings | None = None,
    demo: dict[str, Any] | None = None,
    extra_commands: Sequence[str] = (),
) -> SandboxServer:
    """Bind 127.0.0.1, start the bot (migrations, worker, notifier) with the stand-in,
    and seed the demo when the database is empty.

    ``env`` is the sandbox environment without Slack settings (they are made
    here); ``build_runtime`` and ``web_app`` build the process and its routes (the
    composition root, ``app.py``, passes its own: bot/ never imports handlers/); ``demo``
    passes options to :class:`bot.sandbox.demo.DemoScript`.
    """
    sock = bind(SANDBOX_HOST, env.port if port is None else port)
    url = f"http://{SANDBOX_HOST}:{sock.getsockname()[1]}"
    runtime: Runtime | None = None
    try:
        env = local_slack_environment(env, url)
        # The ledger is kept beside the SQLite file, so a restart finds what the database
        # says was posted (bot/sandbox/settings.py: sandbox_data_folder).
        books = SandboxBooks(sandbox_data_folder(env.database_url))
        runtime = await build_runtime(env, config, outbox=outbox or SANDBOX_OUTBOX, sandbox_books=books)
        box: dict[str, Any] = {"demo": None}
        slack = LocalSlack(
            runtime,
            url,
            extra_commands=extra_commands,
            demo_status=(lambda: demo_banner(runtime, box["demo"])) if seed else None,
            folder=books.folder,
        )
        app = web_app(runtime)
        slack.mount(app)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        if runtime is not None:
            await runtime.close()
        raise
    await runtime.start()
    server = SandboxServer(runtime=runtime, slack=slack, runner=runner, url=url)
    if seed:
        server.demo = box["demo"] = await start_demo(runtime, **(demo or {}))
    return server
