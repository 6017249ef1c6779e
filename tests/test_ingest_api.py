"""POST /api/v1/events and the read API, over real HTTP on loopback."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from storage.models import Document, Posting
from tests.support import bill


async def count(runtime: Runtime, model: Any) -> int:
    async with runtime.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def test_approved_bill_becomes_invoice_posting_in_ledger(
    server: httpx.AsyncClient, runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    answer = await server.post("/api/v1/events", json=bill("B-1"))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["stale"] == []
    assert body["accepted"] == [
        {
            "id": "B-1",
            "document": "ap/bill/B-1",
            "version": 1,
            "postings": [{"kind": "invoice", "state": "pending"}],
        }
    ]
    await runtime.worker.run_until_idle()
    view = (await server.get("/api/v1/documents/ap/bill/B-1")).json()
    [posting] = view["postings"]
    assert posting["state"] == "synced"
    assert posting["external_ref"] == "2026-50001"
    assert posting["erp_status"] == "draft"
    assert view["attempts"][0]["outcome"] == "synced"
    assert view["attempts"][0]["operation"] == "create"
    assert view["data"]["amount"] == "1250.00"
    voucher = sandbox_books["books-dk"].vouchers["2026-50001"]
    assert str(voucher.amount) == "1250.00" and voucher.account == "2800"


async def test_same_event_twice_is_stored_once_and_reported_stale(
    server: httpx.AsyncClient, runtime: Runtime
) -> None:
    first = await server.post("/api/v1/events", json=bill("B-2", version=3))
    again = await server.post("/api/v1/events", json=bill("B-2", version=3))
    older = await server.post("/api/v1/events", json=bill("B-2", version=2, amount="1.00"))
    assert first.status_code == again.status_code == older.status_code == 202
    assert again.json() == {"accepted": [], "stale": ["B-2"]}
    assert older.json()["stale"] == ["B-2"]
    assert await count(runtime, Document) == 1
    assert await count(runtime, Posting) == 1
    view = (await server.get("/api/v1/documents/ap/bill/B-2")).json()
    assert view["version"] == 3 and view["data"]["amount"] == "1250.00"


async def test_invalid_batch_names_every_bad_field_and_stores_nothing(
    server: httpx.AsyncClient, runtime: Runtime
) -> None:
    good = bill("B-3")
    missing = bill("B-4")
    del missing["data"]["supplier"]
    negative = bill("B-5", amount="-10.00")
    bad_date = bill("B-6", date="2026-13-40")
    unknown_integration = bill("B-7", integration="nowhere")
    unknown_kind = {**bill("B-8"), "kind": "receipt"}
    wrong_type = bill("B-9", approved="yes")
    answer = await server.post(
        "/api/v1/events",
        json={"events": [good, missing, negative, bad_date, unknown_integration, unknown_kind, wrong_type]},
    )
    assert answer.status_code == 400
    errors = {(e["index"], e["field"]) for e in answer.json()["errors"]}
    assert {
        (1, "data.supplier"),
        (2, "data.amount"),
        (3, "data.date"),
        (4, "integration"),
        (5, "kind"),
        (6, "data.approved"),
    } <= errors
    assert (0, "data.amount") not in errors
    assert all(e["message"] for e in answer.json()["errors"])
    assert await count(runtime, Document) == 0


async def test_oversized_batch_and_body_are_refused(server: httpx.AsyncClient, runtime: Runtime) -> None:
    many = {"events": [bill(f"B-{i}") for i in range(1001)]}
    answer = await server.post("/api/v1/events", json=many)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "events"
    huge = b'{"events": [' + b" " * (5 * 1024 * 1024) + b"]}"
    answer = await server.post("/api/v1/events", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert await count(runtime, Document) == 0


async def test_wrong_or_missing_token_is_refused(server: httpx.AsyncClient, runtime: Runtime) -> None:
    wrong = await server.post("/api/v1/events", json=bill(), headers={"Authorization": "Bearer nope"})
    missing = await server.post("/api/v1/events", json=bill(), headers={"Authorization": ""})
    read = await server.get("/api/v1/documents/ap/bill/B-1042", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == missing.status_code == read.status_code == 401
    assert await count(runtime, Document) == 0


async def test_read_api_404_and_posting_listing(server: httpx.AsyncClient, runtime: Runtime) -> None:
    assert (await server.get("/api/v1/documents/ap/bill/none")).status_code == 404
    await server.post("/api/v1/events", json={"events": [bill(f"L-{i}") for i in range(5)]})
    page = (await server.get("/api/v1/postings", params={"state": "pending", "limit": 3})).json()
    assert len(page["postings"]) == 3 and page["next_cursor"]
    rest = (
        await server.get(
            "/api/v1/postings", params={"state": "pending", "limit": 3, "cursor": page["next_cursor"]}
        )
    ).json()
    assert len(rest["postings"]) == 2 and rest["next_cursor"] is None
    bad = await server.get("/api/v1/postings", params={"state": "lost"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "state"
    health = await server.get("/healthz")
    assert health.json() == {"ok": True}
