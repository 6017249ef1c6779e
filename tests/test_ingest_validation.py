"""Hostile ingest bodies answer 400 naming the field and store nothing (issue 10, items 1 and 8)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.runtime import Runtime
from storage.models import Document, Posting
from tests.support import bill


async def rows(runtime: Runtime) -> tuple[int, int]:
    async with runtime.db.sessions() as s:
        docs = await s.scalar(select(func.count()).select_from(Document))
        postings = await s.scalar(select(func.count()).select_from(Posting))
    return int(docs or 0), int(postings or 0)


async def stored_amount(server: httpx.AsyncClient, id: str) -> str:
    view = await server.get(f"/api/v1/documents/ap/bill/{id}")
    assert view.status_code == 200, view.text
    return view.json()["data"]["amount"]


async def post(server: httpx.AsyncClient, body: Any) -> httpx.Response:
    """POST JSON written with ASCII escapes, so lone surrogates travel as ``\\udxxx``."""
    return await server.post(
        "/api/v1/events", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def fields(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 400, answer.text
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


@pytest.mark.parametrize(
    ("where", "key", "field"),
    [
        ((), "amount ", "data.amount "),
        ((), " amount", "data. amount"),
        ((), "amount\t", "data.amount\t"),
        ((), "currency ", "data.currency "),
        ((), "paid ", "data.paid "),
        (("supplier",), "name ", "data.supplier.name "),
        (("paid",), "amount ", "data.paid.amount "),
    ],
)
async def test_a_key_that_is_not_the_field_name_exactly_is_refused(
    server: httpx.AsyncClient, runtime: Runtime, where: tuple[str, ...], key: str, field: str
) -> None:
    # The stored bill must keep its amount whatever a later, refused version carried.
    assert (await server.post("/api/v1/events", json=bill("K-1"))).status_code == 202
    before = await rows(runtime)
    event = bill("K-1", version=2, paid={"date": "2026-11-20", "amount": "1250.00"})
    target = event["data"]
    for part in where:
        target = target[part]
    target[key] = {"date": "2026-11-20", "amount": "1.00"} if key.strip() == "paid" else "1"
    if key.strip() == "amount":
        target[key] = 1
    answer = await server.post("/api/v1/events", json=event)
    errors = fields(answer)
    assert field in errors, errors
    assert f"did you mean '{key.strip()}'?" in errors[field]
    assert await rows(runtime) == before
    assert await stored_amount(server, "K-1") == "1250.00"


async def test_an_unknown_key_in_a_payroll_line_is_named_with_its_index(
    server: httpx.AsyncClient, runtime: Runtime
) -> None:
    run = {
        "source": "payroll",
        "kind": "payroll_run",
        "id": "R-1",
        "version": 1,
        "integration": "books-dk",
        "data": {
            "run": "2026-11",
            "date": "2026-11-25",
            "lines": [
                {"account": 7000, "amount": "100.00", "period": "2026-11"},
                {"account": 5820, "amount": "-100.00", "period": "2026-11", "amount ": "5"},
            ],
        },
    }
    errors = fields(await server.post("/api/v1/events", json=run))
    assert "did you mean 'amount'?" in errors["data.lines.1.amount "]
    assert await rows(runtime) == (0, 0)


def with_duplicate(event: dict[str, Any], inside: str, key: str, value: str) -> str:
    """The event as JSON text with ``key`` written a second time in object ``inside``."""
    text = json.dumps(event)
    marker = f'"{inside}": {{'
    assert marker in text
    return text.replace(marker, f"{marker}{json.dumps(key)}: {json.dumps(value)}, ", 1)


@pytest.mark.parametrize(
    ("inside", "key", "field"),
    [("data", "amount", "data.amount"), ("supplier", "name", "data.supplier.name")],
)
async def test_a_key_written_twice_in_the_json_is_refused(
    server: httpx.AsyncClient, runtime: Runtime, inside: str, key: str, field: str
) -> None:
    body = with_duplicate(bill("D-1"), inside, key, "1")
    answer = await server.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    errors = fields(answer)
    assert "duplicate key" in errors[field]
    batch = '{"events": [' + json.dumps(bill("D-2")) + ", " + body + "]}"
    answer = await server.post("/api/v1/events", content=batch, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert {(e["index"], e["field"]) for e in answer.json()["errors"]} == {(1, field)}
    assert await rows(runtime) == (0, 0)


async def test_version_beyond_64_bits_is_refused_and_the_largest_is_stored(
    server: httpx.AsyncClient, runtime: Runtime
) -> None:
    errors = fields(await server.post("/api/v1/events", json=bill("V-1", version=2**63)))
    assert "9223372036854775807" in errors["version"]
    assert fields(await server.post("/api/v1/events", json=bill("V-1", version=10**400)))["version"]
    assert await rows(runtime) == (0, 0)
    answer = await server.post("/api/v1/events", json=bill("V-1", version=2**63 - 1))
    assert answer.status_code == 202, answer.text
    view = (await server.get("/api/v1/documents/ap/bill/V-1")).json()
    assert view["version"] == 2**63 - 1


@pytest.mark.parametrize("depth", [200, 100_000])
async def test_deeply_nested_json_is_refused(server: httpx.AsyncClient, runtime: Runtime, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    event = json.dumps(bill("N-1", text="PLACEHOLDER")).replace('"PLACEHOLDER"', deep)
    answer = await server.post("/api/v1/events", content=event, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text[:300]
    [error] = answer.json()["errors"]
    assert "nested too deeply" in error["message"]
    assert error["field"].startswith("data.text.0.0") if depth == 200 else error["field"] == "(body)"
    wrapped = '{"events": ' + "[" * 100_000 + "]" * 100_000 + "}"
    answer = await server.post(
        "/api/v1/events", content=wrapped, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400 and "nested too deeply" in answer.text
    assert await rows(runtime) == (0, 0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "B-\u00001"}, "id"),
        ({"category": "Office\u0000supplies"}, "data.category"),
        ({"supplier": {"number": 3001, "name": "Kontor\u0000land"}}, "data.supplier.name"),
        ({"text": "a \ud800 lone surrogate"}, "data.text"),
        ({"invoice_number": "INV-\udfff"}, "data.invoice_number"),
        ({"text\u0000": "x"}, "data.text\u0000"),
    ],
)
async def test_text_a_database_cannot_hold_is_refused_naming_the_field(
    server: httpx.AsyncClient, runtime: Runtime, change: dict[str, Any], field: str
) -> None:
    event = bill("T-1")
    if "id" in change:
        event.update(change)
    else:
        event["data"].update(change)
    answer = await post(server, event)
    errors = fields(answer)
    assert field in errors, errors
    assert await rows(runtime) == (0, 0)


async def test_ordinary_unicode_text_is_still_stored(server: httpx.AsyncClient, runtime: Runtime) -> None:
    # Noncharacters and astral characters are valid UTF-8: both databases hold them.
    answer = await server.post("/api/v1/events", json=bill("Ü-1", text="Bürokratie 🧾 \ufffe\uffff"))
    assert answer.status_code == 202, answer.text
    view = (await server.get("/api/v1/documents/ap/bill/Ü-1")).json()
    assert view["data"]["text"] == "Bürokratie 🧾 \ufffe\uffff"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/documents/ap/bill/B%00X",
        "/api/v1/documents/a%00p/bill/B-1",
        "/api/v1/documents/ap/bill/%ED%A0%80",
        "/api/v1/documents/ap/bill/" + "9" * 5000,
        "/api/v1/documents/ap/bill/%20",
        "/api/v1/postings?cursor=99999999999999999999999",
        "/api/v1/postings?cursor=-5",
        "/api/v1/postings?limit=99999999999999999999999",
        "/api/v1/postings?state=%00",
        "/api/v1/postings?integration=%00",
        "/api/v1/postings?cursor=%00",
    ],
)
async def test_the_read_api_never_answers_500(server: httpx.AsyncClient, path: str) -> None:
    assert (await server.post("/api/v1/events", json=bill("B-1"))).status_code == 202
    answer = await server.get(path)
    assert answer.status_code in (200, 400, 404), answer.text
    if answer.status_code == 400:
        assert answer.json()["errors"][0]["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(
    server: httpx.AsyncClient, runtime: Runtime, constant: str
) -> None:
    body = json.dumps(bill("C-1")).replace('"1250.00"', constant)
    answer = await server.post("/api/v1/events", content=body, headers={"Content-Type": "application/json"})
    assert fields(answer)["(body)"] == f"not valid JSON: {constant} is not a JSON number"
    assert await rows(runtime) == (0, 0)
