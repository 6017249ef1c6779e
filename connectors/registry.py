"""Which connector class serves which ``kind`` of integration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import Connector
from connectors.economic.client import EconomicConnector
from connectors.exact.client import ExactConnector
from connectors.procountor.client import ProcountorConnector
from connectors.sandbox.connector import SandboxConnector

Builder = Callable[[str, Mapping[str, Any]], Connector]

BUILDERS: dict[str, Builder] = {
    "sandbox": SandboxConnector.from_settings,
    "economic": EconomicConnector.from_settings,
    "procountor": ProcountorConnector.from_settings,
    "exact": ExactConnector.from_settings,
}


def build(kind: str, name: str, settings: Mapping[str, Any]) -> Connector:
    """A connector for integration ``name`` of ``kind`` with its (resolved) settings."""
    try:
        builder = BUILDERS[kind]
    except KeyError:
        raise ValueError(f"no connector for kind '{kind}' in this version") from None
    return builder(name, settings)
