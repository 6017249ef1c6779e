"""One conformance suite runs against every connector: add a harness to HARNESSES."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.connectors.harness import LedgerHarness, SandboxHarness


async def _sandbox() -> AsyncIterator[LedgerHarness]:
    yield SandboxHarness()


#: name -> async generator yielding a ready harness (starts and stops its fake server)
HARNESSES: dict[str, Callable[[], Any]] = {
    "sandbox": _sandbox,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[LedgerHarness]:
    gen = HARNESSES[request.param]()
    h = await gen.__anext__()
    try:
        yield h
    finally:
        await h.connector.aclose()
        try:
            await gen.__anext__()
        except StopAsyncIteration:
            pass
