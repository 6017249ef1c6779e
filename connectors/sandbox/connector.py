"""The :class:`connectors.base.Connector` over a sandbox ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.base import PostingRequest, PostingResult, RecordStatus
from connectors.sandbox.books import SandboxBooks
from connectors.sandbox.ledger import SUPPORTED, SandboxLedger


class SandboxConnector:
    """The :class:`connectors.base.Connector` over a :class:`SandboxLedger`."""

    kind = "sandbox"

    def __init__(self, ledger: SandboxLedger):
        self.ledger = ledger

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> SandboxConnector:
        """The connector over ``name``'s ledger in ``settings["books"]`` (the process's
        :class:`SandboxBooks`), opened from its config keys the first time."""
        books: SandboxBooks = settings["books"]
        return cls(books.open(name, settings))

    def supports(self, posting_kind: str) -> bool:
        return posting_kind in SUPPORTED

    async def create(self, request: PostingRequest) -> PostingResult:
        return await self.ledger.create(request)

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        return await self.ledger.update(external_ref, request)

    async def find(self, request: PostingRequest) -> PostingResult | None:
        return await self.ledger.find(request)

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        return await self.ledger.status(external_ref, request)

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        await self.ledger.delete(external_ref, request)

    async def aclose(self) -> None:
        return None
