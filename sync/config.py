"""What the engine needs from the config file: integrations, worker and retry policy."""

from __future__ import annotations

import os
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

IntegrationKind = Literal["economic", "procountor", "exact", "sandbox"]


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


#: marks a connector key that holds a credential: ``env:NAME`` is read at start, never shown
CREDENTIAL = "credential"
Credential = Annotated[str | None, CREDENTIAL]


class ConnectorKeys(Strict):
    """The keys one kind of connector reads; any other key is refused."""

    kind: IntegrationKind

    @classmethod
    def credential_keys(cls) -> tuple[str, ...]:
        """The keys holding credentials, in the order they are read."""
        return tuple(k for k, f in cls.model_fields.items() if CREDENTIAL in f.metadata)

    def settings(self) -> dict[str, Any]:
        """The keys that are set, with ``env:NAME`` still unresolved."""
        names = (k for k in type(self).model_fields if k != "kind")
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


class EconomicKeys(ConnectorKeys):
    kind: Literal["economic"] = "economic"
    base_url: str | None = None
    app_secret_token: Credential = None
    agreement_grant_token: Credential = None
    journal: StrictInt | None = None


class SandboxKeys(ConnectorKeys):
    kind: Literal["sandbox"] = "sandbox"
    accounts: dict[str, str] | None = None
    suppliers: dict[str, str] | None = None
    latency_ms: int | None = Field(default=None, ge=0)

    @field_validator("accounts", "suppliers", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else value


class ProcountorKeys(ConnectorKeys):
    kind: Literal["procountor"] = "procountor"
    base_url: str | None = None
    client_id: Credential = None
    client_secret: Credential = None
    api_key: Credential = None
    redirect_uri: str | None = None
    dimensions: dict[str, StrictInt] | None = None
    creditor_account: StrictInt | None = None  # trade creditors account
    company_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class ExactKeys(ConnectorKeys):
    kind: Literal["exact"] = "exact"
    base_url: str | None = None
    division: StrictInt | None = None
    client_id: Credential = None
    client_secret: Credential = None
    refresh_token: Credential = None
    export_dir: str | None = None
    purchase_journal: str | None = None  # Exact journal codes
    general_journal: str | None = None
    redirect_uri: str | None = None


AnyConnectorKeys = Annotated[
    EconomicKeys | SandboxKeys | ProcountorKeys | ExactKeys, Field(discriminator="kind")
]
#: every key some kind of connector reads (a key of another kind gets its own message)
CONNECTOR_KEYS = frozenset(
    k for m in (EconomicKeys, SandboxKeys, ProcountorKeys, ExactKeys) for k in m.model_fields if k != "kind"
)


def key_of_another_kind(key: object) -> bool:
    """Whether ``key`` is a connector key (refused for a kind that does not read it)."""
    return key in CONNECTOR_KEYS


class IntegrationConfig(Strict):
    """One ``[[integrations]]`` table: the common keys, and its kind's connector keys.

    The file is flat; the connector keys are validated as ``connector``, the member of
    the union its ``kind`` names.
    """

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
    connector: AnyConnectorKeys

    @model_validator(mode="before")
    @classmethod
    def _connector_keys_apart(cls, values: Any) -> Any:
        if isinstance(values, dict) and "connector" not in values:
            common = {k: v for k, v in values.items() if k in cls.model_fields}
            keys = {k: v for k, v in values.items() if k not in cls.model_fields}
            return {**common, "connector": {"kind": values.get("kind"), **keys}}
        return values

    def connector_settings(self) -> dict[str, Any]:
        """The keys this kind's connector reads, with ``env:NAME`` still unresolved."""
        return self.connector.settings()

    def public_settings(self) -> dict[str, Any]:
        """What may be stored and shown: everything but credentials."""
        hidden = {"kind", *self.connector.credential_keys()}
        return {
            **self.model_dump(mode="json", exclude_none=True, exclude={"connector"}),
            **self.connector.model_dump(mode="json", exclude_none=True, exclude=hidden),
        }


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
