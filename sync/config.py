"""What the engine needs from the config file: integrations, worker and retry policy."""

from __future__ import annotations

import os
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

IntegrationKind = Literal["economic", "procountor", "exact", "sandbox"]

COMMON_KEYS = {
    "name",
    "kind",
    "channel",
    "auto_transfer",
    "history_start",
    "monthly_quota",
    "payment_account",
    "fee_account",
    "ready_statuses",
    "mappings",
    "numbers",
}
KIND_KEYS: dict[str, set[str]] = {
    "economic": {"base_url", "app_secret_token", "agreement_grant_token", "journal"},
    "sandbox": {"accounts", "suppliers", "latency_ms"},
    "procountor": {
        "base_url",
        "client_id",
        "client_secret",
        "api_key",
        "redirect_uri",
        "dimensions",
        "creditor_account",
        "company_currency",
    },
    "exact": {
        "base_url",
        "division",
        "client_id",
        "client_secret",
        "refresh_token",
        "export_dir",
        "purchase_journal",
        "general_journal",
        "redirect_uri",
    },
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mappings(Strict):
    """Source names -> ledger numbers."""

    categories: dict[str, StrictInt] = Field(default_factory=dict)
    departments: dict[str, StrictInt] = Field(default_factory=dict)
    payment_methods: dict[str, StrictInt] = Field(default_factory=dict)


class NumberRanges(Strict):
    debtor: tuple[StrictInt, StrictInt] | None = None
    creditor: tuple[StrictInt, StrictInt] | None = None


class IntegrationConfig(Strict):
    """One ``[[integrations]]`` table."""

    name: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    kind: IntegrationKind
    channel: str | None = None
    auto_transfer: bool = True
    history_start: date | None = None
    monthly_quota: int = Field(default=0, ge=0)
    payment_account: StrictInt | None = None
    fee_account: StrictInt | None = None
    ready_statuses: list[str] = Field(default_factory=lambda: ["paid", "completed"])
    mappings: Mappings = Field(default_factory=Mappings)
    numbers: NumberRanges = Field(default_factory=NumberRanges)
    # connector keys (validated per kind below)
    base_url: str | None = None
    app_secret_token: str | None = None
    agreement_grant_token: str | None = None
    journal: StrictInt | None = None
    accounts: dict[str, str] | None = None
    suppliers: dict[str, str] | None = None
    latency_ms: int | None = Field(default=None, ge=0)
    client_id: str | None = None
    client_secret: str | None = None
    api_key: str | None = None
    redirect_uri: str | None = None
    dimensions: dict[str, StrictInt] | None = None
    division: StrictInt | None = None
    creditor_account: StrictInt | None = None  # Procountor: trade creditors account
    company_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    purchase_journal: str | None = None  # Exact journal codes
    general_journal: str | None = None
    refresh_token: str | None = None
    export_dir: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys_of_kind(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("kind") in KIND_KEYS:
            allowed = COMMON_KEYS | KIND_KEYS[values["kind"]]
            for key in values:
                if key not in allowed and key in cls.model_fields:
                    raise ValueError(f"key '{key}' is not used by kind '{values['kind']}'")
        return values

    @field_validator("accounts", "suppliers", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value

    def connector_settings(self) -> dict[str, Any]:
        """The keys this kind's connector reads, with ``env:NAME`` still unresolved."""
        return {k: getattr(self, k) for k in KIND_KEYS[self.kind] if getattr(self, k) is not None}

    def public_settings(self) -> dict[str, Any]:
        """What may be stored and shown: everything but credentials."""
        secret = {
            "app_secret_token",
            "agreement_grant_token",
            "client_secret",
            "api_key",
            "refresh_token",
            "client_id",
        }
        return {k: v for k, v in self.model_dump(mode="json", exclude_none=True).items() if k not in secret}


class WorkerConfig(Strict):
    """How postings are sent."""

    concurrency: int = Field(default=8, ge=1, le=256)  # companies in parallel per process
    lease_seconds: int = Field(default=120, ge=5)  # a crashed worker's company frees after this
    poll_seconds: float = Field(default=1.0, gt=0)
    call_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _call_ends_inside_the_lease(self) -> WorkerConfig:
        # A call that outlives its posting's lease could land after another worker took the
        # posting over and looked it up: the lease must outlast the longest call.
        if self.call_timeout_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"call_timeout_seconds ({self.call_timeout_seconds:g}) must be at most half of "
                f"lease_seconds ({self.lease_seconds})"
            )
        return self


class RetryConfig(Strict):
    """Backoff for transient failures."""

    base_seconds: float = Field(default=30.0, gt=0)
    max_seconds: float = Field(default=3600.0, gt=0)
    jitter: float = Field(default=0.2, ge=0, le=1)
    max_attempts: int = Field(default=12, ge=1)


class SecretMissing(ValueError):
    """A credential named in the config is not in the environment."""


def resolve_secret(value: str | None, key: str, environ: dict[str, str] | None = None) -> str | None:
    """``env:NAME`` -> the value of NAME; literal values pass through.

    The error names the setting and the variable, never a value.
    """
    if value is None or not value.startswith("env:"):
        return value
    env = os.environ if environ is None else environ
    name = value[4:]
    if not env.get(name):
        raise SecretMissing(f"{key}: environment variable {name} is not set")
    return env[name]
