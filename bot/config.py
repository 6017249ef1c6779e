"""Start-up settings: the environment (CONTRACT.md) and the TOML config file.

A missing or invalid setting stops start-up with one line naming the setting
and what is wrong; secrets are never printed.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.ops.scheduler import SchedulerConfig
from sync.config import IntegrationConfig, RetryConfig, WorkerConfig, key_of_another_kind


class ConfigError(Exception):
    """One line for the operator: which setting, what is wrong."""


class Environment(BaseSettings):
    """The environment variables of CONTRACT.md."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite+aiosqlite:///ledgerops.db"
    ledgerops_config: str = "ledgerops.toml"
    ledgerops_ingest_token: SecretStr | None = None
    #: when set, ``GET /metrics`` needs ``Authorization: Bearer <token>``; unset, it is open
    ledgerops_metrics_token: SecretStr | None = None
    port: int = Field(default=3000, ge=1, le=65535)

    @field_validator(
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "ledgerops_ingest_token",
        "ledgerops_metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with xoxb-")
        return value

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.match(r"^https?://", value):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @property
    def sandbox(self) -> bool:
        """No bot token: run the local Slack stand-in and the sandbox ledger."""
        return self.slack_bot_token is None


def load_environment(environ: dict[str, str] | None = None) -> Environment:
    """Read and check the environment, or raise :class:`ConfigError`."""
    try:
        if environ is None:
            return Environment()
        lowered = {k.lower(): v for k, v in environ.items() if k.lower() in Environment.model_fields}
        return Environment(**lowered)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]).upper() if err["loc"] else "environment"
        raise ConfigError(f"{name}: {_clean(err['msg'])}") from None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SlackConfig(Strict):
    channel: str | None = None
    command: str = Field(default="/ledger", pattern=r"^/[a-z0-9_-]{1,31}$")
    allowed_users: list[str] = Field(default_factory=list)
    allowed_usergroup: str | None = None
    digest_time: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    #: where the App Home's About links the README (none: the About names no link)
    readme_url: str | None = Field(default=None, pattern=r"^https?://\S{1,400}$")


class ConfigFile(Strict):
    """The whole ``ledgerops.toml``."""

    slack: SlackConfig = Field(default_factory=SlackConfig)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    integrations: list[IntegrationConfig] = Field(default_factory=list)

    @field_validator("integrations")
    @classmethod
    def _unique_names(cls, value: list[IntegrationConfig]) -> list[IntegrationConfig]:
        seen: set[str] = set()
        for integ in value:
            if integ.name in seen:
                raise ValueError(f"integration name '{integ.name}' is used twice")
            seen.add(integ.name)
        return value

    def integration(self, name: str) -> IntegrationConfig | None:
        return next((i for i in self.integrations if i.name == name), None)


def _clean(msg: str) -> str:
    return re.sub(r"^(Value error|Assertion failed), ", "", msg)


def _where(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list):
            name = node[part].get("name") if part < len(node) and isinstance(node[part], dict) else None
            parts[-1] = f"{parts[-1]}[{name or part}]"
            node = node[part] if part < len(node) else None
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)


def parse_config(text: str, source: str = "ledgerops.toml") -> ConfigFile:
    """Parse and validate TOML text, or raise :class:`ConfigError` naming the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc, raw)}") from None


def _first_error(exc: ValidationError, raw: dict[str, Any]) -> str:
    """``where: what`` of the error a person should fix first.

    An integration's connector keys are validated as its ``connector`` (tagged by kind)
    though the file is flat, so that part of the location is left out; a key another
    kind reads is named as such before anything else.
    """
    errors = exc.errors()
    err = next((e for e in errors if _other_kinds_key(e)), errors[0])
    loc = _flat(tuple(p for p in err["loc"] if not str(p).startswith("function-")))
    if _other_kinds_key(err):
        kind = err["loc"][err["loc"].index("connector") + 1]
        return f"{_where(loc[:-1], raw)}: key '{loc[-1]}' is not used by kind '{kind}'"
    msg = "unknown key" if err["type"] == "extra_forbidden" else _clean(err["msg"])
    return f"{_where(loc, raw)}: {msg}"


def _other_kinds_key(err: Any) -> bool:
    loc = err["loc"]
    return err["type"] == "extra_forbidden" and "connector" in loc and key_of_another_kind(loc[-1])


def _flat(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location as the file spells it: without ``connector`` and its kind tag."""
    if "connector" in loc:
        at = loc.index("connector")
        return loc[:at] + loc[at + 2 :]
    return loc


def load_config(path: str | Path) -> ConfigFile:
    """Read the config file named by ``LEDGEROPS_CONFIG``."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"LEDGEROPS_CONFIG: file {p} does not exist")
    return parse_config(p.read_text(encoding="utf-8"), source=str(p))
