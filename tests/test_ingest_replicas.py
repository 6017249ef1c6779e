"""The same batch sent to two replicas at once is stored once; both answer 202 (issue 10, item 8)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
from aiohttp import web
from sqlalchemy import func, select

from bot.runtime import Runtime
from handlers.routes import build_web_app
from storage.models import Document, Posting
from tests.support import INGEST_TOKEN, bill

ROUNDS = 8
BATCH = 40


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """One replica's HTTP server on a loopback port."""
    runner = web.AppRunner(build_web_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
            timeout=60,
        ) as client:
            yield client
    finally:
        await runner.cleanup()


async def replicas(make_runtime: Callable[..., Any], stack: AsyncExitStack) -> list[httpx.AsyncClient]:
    first, second = await make_runtime(), await make_runtime()
    return [await stack.enter_async_context(serving(first)), await stack.enter_async_context(serving(second))]


async def stored(runtime: Runtime) -> tuple[int, int, dict[str, int]]:
    async with runtime.db.sessions() as s:
        docs = int(await s.scalar(select(func.count()).select_from(Document)) or 0)
        postings = int(await s.scalar(select(func.count()).select_from(Posting)) or 0)
        rows = (await s.execute(select(Document.external_id, Document.version))).all()
        versions = {external_id: version for external_id, version in rows}
    return docs, postings, versions


def assert_stored_once(answers: list[httpx.Response], ids: list[str]) -> None:
    """Every id accepted by exactly one answer and stale in the other, like a second send."""
    assert [a.status_code for a in answers] == [202, 202], [a.text[:300] for a in answers]
    accepted = [e["id"] for a in answers for e in a.json()["accepted"]]
    stale = [i for a in answers for i in a.json()["stale"]]
    assert sorted(accepted) == sorted(ids)
    assert sorted(stale) == sorted(ids)


async def test_one_new_batch_sent_to_two_replicas_at_once(make_runtime: Any, runtime: Runtime) -> None:
    async with AsyncExitStack() as stack:
        a, b = await replicas(make_runtime, stack)
        for r in range(ROUNDS):
            ids = [f"R{r}-{i}" for i in range(BATCH)]
            body = {"events": [bill(i, paid={"date": "2026-11-20", "amount": "1250.00"}) for i in ids]}
            answers = await asyncio.gather(
                a.post("/api/v1/events", json=body), b.post("/api/v1/events", json=body)
            )
            assert_stored_once(list(answers), ids)
    docs, postings, _ = await stored(runtime)
    assert (docs, postings) == (ROUNDS * BATCH, 2 * ROUNDS * BATCH)


async def test_two_versions_at_once_on_two_replicas_keep_the_newest(
    make_runtime: Any, runtime: Runtime
) -> None:
    # Both replicas find version 1; without a lock the older write could land last.
    async with AsyncExitStack() as stack:
        a, b = await replicas(make_runtime, stack)
        ids = [f"V-{i}" for i in range(BATCH)]
        assert (await a.post("/api/v1/events", json={"events": [bill(i) for i in ids]})).status_code == 202
        for version in range(2, 2 + 2 * ROUNDS, 2):
            older = {"events": [bill(i, version=version, amount=f"{version}.00") for i in ids]}
            newer = {"events": [bill(i, version=version + 1, amount=f"{version + 1}.00") for i in ids]}
            answers = await asyncio.gather(
                a.post("/api/v1/events", json=older), b.post("/api/v1/events", json=newer)
            )
            assert [x.status_code for x in answers] == [202, 202], [x.text[:300] for x in answers]
            _, _, versions = await stored(runtime)
            assert set(versions.values()) == {version + 1}
            view = (await a.get(f"/api/v1/documents/ap/bill/{ids[-1]}")).json()
            assert view["data"]["amount"] == f"{version + 1}.00"


async def test_one_batch_sent_twice_at_once_to_one_replica(
    server: httpx.AsyncClient, runtime: Runtime
) -> None:
    for r in range(ROUNDS):
        ids = [f"S{r}-{i}" for i in range(BATCH)]
        body = {"events": [bill(i) for i in ids]}
        answers = await asyncio.gather(*(server.post("/api/v1/events", json=body) for _ in range(2)))
        assert_stored_once(list(answers), ids)
    docs, postings, _ = await stored(runtime)
    assert (docs, postings) == (ROUNDS * BATCH, ROUNDS * BATCH)
