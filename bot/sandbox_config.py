"""Settings of sandbox mode: a local ingest token and a small company's sandbox ledger."""

from __future__ import annotations

from pydantic import SecretStr

from bot.config import ConfigFile, Environment, SlackConfig
from sync.config import IntegrationConfig, Mappings

SANDBOX_INGEST_TOKEN = "sandbox-ingest-token"
SANDBOX_DB = "sqlite+aiosqlite:///sandbox-data/ledgerops-sandbox.db"


def sandbox_environment(env: Environment) -> Environment:
    """Sandbox defaults for what the environment leaves unset."""
    updates: dict[str, object] = {}
    if env.ledgerops_ingest_token is None:
        updates["ledgerops_ingest_token"] = SecretStr(SANDBOX_INGEST_TOKEN)
    if "database_url" not in env.model_fields_set:
        from pathlib import Path

        Path("sandbox-data").mkdir(exist_ok=True)
        updates["database_url"] = SANDBOX_DB
    return env.model_copy(update=updates) if updates else env


def sandbox_config() -> ConfigFile:
    """A small Danish company on the sandbox ledger."""
    return ConfigFile(
        slack=SlackConfig(channel="C0FINANCE", allowed_users=["U0ALICE"]),
        integrations=[IntegrationConfig(
            name="sandbox-dk", kind="sandbox", payment_account=5820, fee_account=7200,
            mappings=Mappings(
                categories={"Office supplies": 2800, "Software": 2820, "Rent": 3600,
                            "Freight": 2750},
                departments={"Sales": 1, "Operations": 2},
                payment_methods={"mobilepay": 5830, "card": 5840},
            ),
        )],
    )
