"""Settings of sandbox mode: a small company on the sandbox ledger, and the local Slack stand-in.

Sandbox mode runs the real bot; only its surroundings are local: the ledger is
:mod:`connectors.sandbox.ledger` and Slack is :mod:`bot.local_slack` on the same
server. The bot token and signing secret are made up per process, so nothing
outside this process can sign a request the bot would accept.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bot.config import ConfigError, ConfigFile, Environment, SlackConfig, load_config
from storage.db import sqlite_file
from sync.config import IntegrationConfig, Mappings, RetryConfig, WorkerConfig

SANDBOX_INGEST_TOKEN = "sandbox-ingest-token"
SANDBOX_DATA_DIR = "sandbox-data"
SANDBOX_DB_FILE = "ledgerops-sandbox.db"
SANDBOX_DB = f"sqlite+aiosqlite:///{SANDBOX_DATA_DIR}/{SANDBOX_DB_FILE}"
#: kept beside the database (connectors/sandbox/ledger_file.py, bot/local_slack/channel_file.py)
KEPT_LEDGERS, KEPT_CHANNEL = "sandbox-ledger-*.json", "sandbox-channel.json"
SANDBOX_HOST = "127.0.0.1"  # never anything else: the stand-in has no real authentication
SANDBOX_CHANNEL = "C0FINANCE"
SANDBOX_INTEGRATION = "sandbox-dk"


@dataclass(frozen=True)
class SandboxUser:
    """A person in the stand-in's workspace."""

    id: str
    name: str  # the handle, as in @alice
    real_name: str  # what the page shows
    title: str = ""


#: Alice is on ``allowed_users``; Bob may act through the user group; Mallory may not act.
SANDBOX_USERS: tuple[SandboxUser, ...] = (
    SandboxUser("U0ALICE", "alice", "Alice (finance)", "Accountant"),
    SandboxUser("U0BOB", "bob", "Bob (finance team group)", "Bookkeeper"),
    SandboxUser("U0MALLORY", "mallory", "Mallory (sales, not allowed)", "Sales"),
)
SANDBOX_USERGROUP = "S0FINANCE"
#: user group id -> (handle, member ids); answered by ``usergroups.users.list``
SANDBOX_USERGROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    SANDBOX_USERGROUP: ("finance-team", ("U0BOB",)),
}


def sandbox_environment(env: Environment) -> Environment:
    """Sandbox defaults for what the environment leaves unset (database, ingest token)."""
    updates: dict[str, object] = {}
    if env.ledgerops_ingest_token is None:
        updates["ledgerops_ingest_token"] = SecretStr(SANDBOX_INGEST_TOKEN)
    if "database_url" not in env.model_fields_set:
        Path(SANDBOX_DATA_DIR).mkdir(exist_ok=True)
        updates["database_url"] = SANDBOX_DB
    return env.model_copy(update=updates) if updates else env


def sandbox_data_folder(database_url: str) -> Path | None:
    """The folder of the sandbox's SQLite file, where its ledger and channel are kept too.

    ``None`` for an in-memory or non-SQLite database: then the ledger and the channel
    live in memory and a restart starts them empty. When the database file is gone
    (deleted to start over), the ledger and channel files beside it go too: the
    three are wiped together, never one without the others.
    """
    database = sqlite_file(database_url)
    if database is None:
        return None
    if not database.exists():
        for kept in [*database.parent.glob(KEPT_LEDGERS), database.parent / KEPT_CHANNEL]:
            kept.unlink(missing_ok=True)
    return database.parent


def local_slack_environment(env: Environment, base_url: str) -> Environment:
    """Point the bot at the stand-in served under ``base_url`` (``http://127.0.0.1:PORT``).

    A fresh ``xoxb-sandbox-…`` token and signing secret each start: the stand-in
    is told them in-process, nobody else learns them.
    """
    base = base_url.rstrip("/")
    return env.model_copy(
        update={
            "slack_bot_token": SecretStr(f"xoxb-sandbox-{secrets.token_hex(12)}"),
            "slack_signing_secret": SecretStr(secrets.token_hex(32)),
            "slack_app_token": None,  # Socket Mode would dial real Slack
            "slack_api_url": f"{base}/slack-api/",
        }
    )


def sandbox_config(*, retry_seconds: float = 2.0, max_attempts: int = 3) -> ConfigFile:
    """A small Danish company on the sandbox ledger.

    Retries are quick and give up after ``max_attempts`` so that an unreachable
    ledger turns into a message within seconds instead of after an hour.
    """
    return ConfigFile(
        slack=SlackConfig(
            channel=SANDBOX_CHANNEL, allowed_users=["U0ALICE"], allowed_usergroup=SANDBOX_USERGROUP
        ),
        retry=RetryConfig(
            base_seconds=retry_seconds,
            max_seconds=max(30.0, retry_seconds),
            jitter=0.2,
            max_attempts=max_attempts,
        ),
        worker=WorkerConfig(poll_seconds=0.5),  # a due retry goes out promptly
        integrations=[
            IntegrationConfig(
                name=SANDBOX_INTEGRATION,
                kind="sandbox",
                payment_account=5820,
                fee_account=7200,
                mappings=Mappings(
                    # "Travel" and "Catering" are left out on purpose: the demo's unmapped bills.
                    categories={"Office supplies": 2800, "Software": 2820, "Rent": 3600, "Freight": 2750},
                    departments={"Sales": 1, "Operations": 2},
                    payment_methods={"mobilepay": 5830, "card": 5840},
                ),
            )
        ],
    )


def sandbox_config_file(env: Environment) -> ConfigFile:
    """The config sandbox mode runs with.

    The built-in one, unless ``LEDGEROPS_CONFIG`` is set explicitly: a
    ``ledgerops.toml`` lying in the working directory may name real ledgers, and
    the sandbox must never post to real books. An explicit file may only name
    sandbox integrations.
    """
    if "ledgerops_config" not in env.model_fields_set:
        return sandbox_config()
    config = load_config(env.ledgerops_config)
    real = [i for i in config.integrations if i.kind != "sandbox"]
    if real:
        raise ConfigError(
            f"{env.ledgerops_config}: integrations[{real[0].name}] is kind '{real[0].kind}'; "
            "sandbox mode only runs sandbox integrations (use `python app.py serve`)"
        )
    return config


def sandbox_status_settings(env: Environment) -> tuple[Environment, ConfigFile] | None:
    """What ``python app.py status`` reads when it is run where the sandbox runs.

    The sandbox's own database and config when there is no bot token, no
    ``LEDGEROPS_CONFIG`` and no ``ledgerops.toml`` (``None`` otherwise: the
    configured deployment); :class:`ConfigError` when the sandbox never ran here.
    """
    if not env.sandbox or "ledgerops_config" in env.model_fields_set or Path(env.ledgerops_config).exists():
        return None
    if "database_url" not in env.model_fields_set and not Path(SANDBOX_DATA_DIR, SANDBOX_DB_FILE).exists():
        raise ConfigError(
            f"no {env.ledgerops_config} here and no sandbox data in {SANDBOX_DATA_DIR}/ yet: "
            "start the sandbox with `make run`, or set LEDGEROPS_CONFIG"
        )
    return sandbox_environment(env), sandbox_config_file(env)
