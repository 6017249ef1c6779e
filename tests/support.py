"""Shared test helpers: a controllable clock, event builders, waiting with a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from bot.config import ConfigFile, Environment, SlackConfig
from sync.config import IntegrationConfig, Mappings, RetryConfig, WorkerConfig

INGEST_TOKEN = "test-ingest-token"


class FakeClock:
    """A clock tests move by hand; nothing waits for real time."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def sandbox_integration(name: str = "books-dk", **overrides: Any) -> IntegrationConfig:
    values: dict[str, Any] = dict(
        name=name,
        kind="sandbox",
        payment_account=5820,
        mappings=Mappings(categories={"Office supplies": 2800, "Software": 2820}, departments={"Sales": 1}),
    )
    values.update(overrides)
    return IntegrationConfig(**values)


def make_config(*integrations: IntegrationConfig, **sections: Any) -> ConfigFile:
    return ConfigFile(
        slack=sections.pop("slack", SlackConfig(channel="C0FINANCE", allowed_users=["U0ALICE"])),
        worker=sections.pop("worker", WorkerConfig(concurrency=4, poll_seconds=0.05)),
        retry=sections.pop("retry", RetryConfig(base_seconds=30, max_seconds=600, max_attempts=5)),
        integrations=list(integrations) or [sandbox_integration()],
    )


def make_env(database_url: str, **overrides: Any) -> Environment:
    values: dict[str, Any] = dict(database_url=database_url, ledgerops_ingest_token=SecretStr(INGEST_TOKEN))
    values.update(overrides)
    return Environment(**values)


def bill(
    id: str = "B-1042",
    *,
    version: int = 1,
    integration: str = "books-dk",
    amount: str = "1250.00",
    category: str = "Office supplies",
    department: str | None = None,
    approved: bool = True,
    paid: dict[str, Any] | None = None,
    supplier: dict[str, Any] | None = None,
    date: str = "2026-11-02",
    due_date: str = "2026-12-02",
    **data: Any,
) -> dict[str, Any]:
    """A bill event as the bill-pay source sends it."""
    body: dict[str, Any] = {
        "supplier": supplier or {"number": 3001, "name": "Kontorland A/S"},
        "invoice_number": f"INV-{id}",
        "amount": amount,
        "currency": "DKK",
        "date": date,
        "due_date": due_date,
        "category": category,
        "approved": approved,
        "paid": paid,
    }
    if department is not None:
        body["department"] = department
    body.update(data)
    return {
        "source": "ap",
        "kind": "bill",
        "id": id,
        "version": version,
        "integration": integration,
        "data": body,
    }


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 10.0, message: str = "condition"
) -> Any:
    """Await ``check()`` until it returns something truthy, or fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {message}; last: {result!r}")
        await asyncio.sleep(0.01)  # ok-sleep: yields while polling a condition under a deadline
