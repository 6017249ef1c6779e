"""ledgerops entry point: ``python app.py [sandbox|serve|ingest|migrate|status|connect]``.

The composition root and the command line, nothing else: read settings, build
the runtime (:func:`build_runtime`: database, connectors, engine, worker, Slack,
outbox, scheduler, metrics), mount the routes, start, stop. Tests and benchmarks
build their runtimes with the same :func:`build_runtime`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aiohttp import web

from bot.config import ConfigError, ConfigFile, Environment, load_config, load_environment
from bot.logs import remember_secret
from bot.ops.scheduler import Scheduler, Sweeps
from bot.outbox.notifier import Notifier
from bot.outbox.pace import OutboxSettings
from bot.runtime import Runtime
from bot.slack import build_slack_bot
from connectors import registry
from connectors.base import Connector
from connectors.sandbox.books import SandboxBooks
from handlers.ingest import parse_json
from handlers.routes import build_web_app
from storage.credentials import DatabaseTokenStore, SecretKeyError, secret_key_from_env
from storage.db import Database, DatabaseLockError, connect, single_process_lock
from storage.migrate import upgrade_async
from storage.queries.figures import postings_by_integration_and_state
from sync.config import IntegrationConfig, SecretMissing, resolve_secret
from sync.documents import MAX_BATCH, validate_batch
from sync.engine import Clock, Engine, utcnow
from sync.ingest import IngestRejected, ingest_batch
from sync.policy import RetryPolicy
from sync.worker import Worker

log = logging.getLogger("ledgerops")


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


async def build_runtime(
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
    runtime = Runtime(
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


def _fail(message: str) -> int:
    print(f"ledgerops: {message}", file=sys.stderr)
    return 2


def _config(env: Environment) -> ConfigFile:
    return load_config(env.ledgerops_config)


async def _until_signalled() -> None:
    """Wait for SIGINT or SIGTERM (a clean stop for both serve and the sandbox)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(env: Environment, config: ConfigFile, host: str) -> None:
    runtime = await build_runtime(env, config)
    app = build_web_app(runtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, env.port)
    await site.start()
    await runtime.start()  # worker, scheduler; with a bot token the Slack outbox (and Socket Mode)
    print(f"ledgerops: listening on http://{host}:{env.port}", flush=True)
    log.info(
        "listening",
        extra={"host": host, "port": env.port, "slack": "on" if runtime.slack is not None else "off"},
    )
    try:
        await _until_signalled()
    finally:
        await runner.cleanup()
        await runtime.close()


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP routes and run the worker against the configured ledgers."""
    env = load_environment()
    config = _config(env)
    with single_process_lock(env.database_url):
        asyncio.run(_serve(env, config, args.host))
    return 0


async def _serve_sandbox(env: Environment) -> int:
    """Run the bot with the local Slack stand-in until SIGINT/SIGTERM."""
    from bot.local_slack import start_sandbox
    from bot.sandbox.settings import sandbox_config_file

    server = await start_sandbox(env, sandbox_config_file(env), build_runtime, build_web_app)
    print(f"ledgerops: open {server.url}", flush=True)
    try:
        await _until_signalled()
    finally:
        await server.close()
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    """Sandbox mode: no Slack token; sandbox ledger and a local Slack at 127.0.0.1 only."""
    env = load_environment()
    if not env.sandbox:
        return _fail(
            "SLACK_BOT_TOKEN is set: the sandbox only runs without a real Slack token "
            "(use `python app.py serve`)"
        )
    from bot.sandbox.settings import sandbox_environment

    env = sandbox_environment(env)
    # The page is where to look; the log says only what needs a developer's attention.
    logging.getLogger().setLevel(logging.WARNING)
    with single_process_lock(env.database_url):
        return asyncio.run(_serve_sandbox(env))


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Bring the database schema up to date."""
    env = load_environment()
    with single_process_lock(env.database_url):  # no schema change under a running server
        asyncio.run(upgrade_async(env.database_url))
    print("ledgerops: database is up to date")
    return 0


async def _ingest_file(env: Environment, config: ConfigFile, path: Path) -> int:
    names = {i.name for i in config.integrations}
    events = []
    problems = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                raw = parse_json(line)
            except ValueError as exc:
                problems.append(f"line {lineno}: not valid JSON: {exc}")
                continue
            valid, errors = validate_batch(raw, names)
            problems.extend(f"line {lineno}: {e.field}: {e.message}" for e in errors)
            events.extend(valid)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"ledgerops: {len(problems)} problem(s); nothing was stored", file=sys.stderr)
        return 1
    runtime = await build_runtime(env, config)
    accepted = stale = 0
    try:
        for i in range(0, len(events), MAX_BATCH):
            result = await ingest_batch(runtime.engine, events[i : i + MAX_BATCH])
            accepted += len(result.accepted)
            stale += len(result.stale)
    except IngestRejected as exc:
        for e in exc.errors:
            print(f"event {e.index}: {e.field}: {e.message}", file=sys.stderr)
        return 1
    finally:
        await runtime.close()
    print(json.dumps({"accepted": accepted, "stale": stale}))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    """Store the events of a JSON-lines file (same validation as the API)."""
    env = load_environment()
    path = Path(args.file)
    if not path.exists():
        return _fail(f"{path}: no such file")
    # A second writer beside `serve` on SQLite: while it runs, send the file to its API.
    with single_process_lock(env.database_url):
        return asyncio.run(_ingest_file(env, _config(env), path))


async def _status(env: Environment, config: ConfigFile) -> dict[str, dict[str, int]]:
    runtime = await build_runtime(env, config)
    try:
        async with runtime.db.sessions() as s:
            counts = await postings_by_integration_and_state(s)
    finally:
        await runtime.close()
    out: dict[str, Counter[str]] = {i.name: Counter() for i in config.integrations}
    for (name, state), count in counts.items():
        out.setdefault(name, Counter())[state] = count
    return {k: dict(v) for k, v in out.items()}


def cmd_status(_args: argparse.Namespace) -> int:
    """Print postings per integration and state as JSON (the sandbox's, where it runs)."""
    from bot.sandbox.settings import sandbox_status_settings

    env = load_environment()
    env, config = sandbox_status_settings(env) or (env, _config(env))
    print(json.dumps(asyncio.run(_status(env, config)), indent=2, sort_keys=True))
    return 0


async def _connect(env: Environment, config: ConfigFile, name: str, port: int) -> str:
    from bot.connect import connect_exact
    from storage.credentials import DatabaseTokenStore, SecretKeyError, secret_key_from_env
    from storage.db import connect as connect_db

    cfg = config.integration(name)
    if cfg is None:
        known = ", ".join(i.name for i in config.integrations) or "none"
        raise ConfigError(f"no integration named '{name}' in {env.ledgerops_config} (configured: {known})")
    if cfg.kind != "exact":
        raise ConfigError(
            f"integrations[{name}]: kind '{cfg.kind}' needs no `connect`; its "
            "credentials come from the environment"
        )
    try:
        key = secret_key_from_env()
    except SecretKeyError as exc:
        raise ConfigError(str(exc)) from None
    await upgrade_async(env.database_url)
    db = connect_db(env.database_url)
    try:
        return await connect_exact(cfg, DatabaseTokenStore(db, cfg.name, key), port=port)
    finally:
        await db.dispose()


def cmd_connect(args: argparse.Namespace) -> int:
    """Authorize once with a system that needs a person to sign in (Exact Online)."""
    from bot.connect import ConnectError

    env = load_environment()
    try:
        print(asyncio.run(_connect(env, _config(env), args.integration, args.port)))
    except ConnectError as exc:
        return _fail(str(exc))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("sandbox", help=cmd_sandbox.__doc__).set_defaults(func=cmd_sandbox)
    serve = sub.add_parser("serve", help=cmd_serve.__doc__)
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    serve.set_defaults(func=cmd_serve)
    ingest = sub.add_parser("ingest", help=cmd_ingest.__doc__)
    ingest.add_argument("file", help='JSON lines: one event (or {"events": [...]}) per line')
    ingest.set_defaults(func=cmd_ingest)
    sub.add_parser("migrate", help=cmd_migrate.__doc__).set_defaults(func=cmd_migrate)
    connect = sub.add_parser("connect", help=cmd_connect.__doc__)
    connect.add_argument("integration", help="name of an exact integration in the config")
    connect.add_argument(
        "--port",
        type=int,
        default=8765,
        help="local callback port (the redirect URI registered with Exact is "
        "http://127.0.0.1:PORT/exact/callback)",
    )
    connect.set_defaults(func=cmd_connect)
    sub.add_parser("status", help=cmd_status.__doc__).set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) == "serve":
        # A server's log goes to a collector: one JSON object per line, with posting and
        # document ids as fields, tokens masked (bot/logs.py).
        from bot.logs import configure

        configure()
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    func_ = getattr(args, "func", cmd_sandbox)
    try:
        return func_(args)
    except (ConfigError, SecretMissing, DatabaseLockError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
