"""Read API and health: ``GET /api/v1/documents/...``, ``/api/v1/postings``, ``/healthz``."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web

from handlers.ingest import RUNTIME, bearer_ok
from storage.db import MAX_BIGINT
from storage.states import PostingState
from sync.intake import unstorable
from sync.log import document_view, postings_page

log = logging.getLogger(__name__)


def refuse(field: str, message: str) -> web.Response:
    """A 400 in the ingest API's shape, naming one query or path parameter."""
    return web.json_response({"errors": [{"index": None, "field": field, "message": message}]}, status=400)


async def get_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if (refusal := bearer_ok(request, runtime)) is not None:
        return refusal
    m = request.match_info
    for name in ("source", "kind", "id"):
        # No document can hold such text, and PostgreSQL refuses it even in a comparison.
        if (why := unstorable(m[name])) is not None:
            return refuse(name, why)
    async with runtime.db.sessions() as s:
        view = await document_view(s, m["source"], m["kind"], m["id"])
    if view is None:
        return web.json_response({"error": f"no {m['kind']} {m['id']} from {m['source']}"}, status=404)
    return web.json_response(view)


async def list_postings(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if (refusal := bearer_ok(request, runtime)) is not None:
        return refusal
    q = request.query
    state = q.get("state")
    if state and state not in PostingState.__members__.values():
        return refuse("state", "expected one of " + ", ".join(s.value for s in PostingState))
    integration = q.get("integration")
    if integration and integration not in runtime.engine.integrations:
        return refuse("integration", f"unknown integration '{integration}'")
    cursor_raw = q.get("cursor")
    try:
        cursor = int(cursor_raw) if cursor_raw else None
    except ValueError:
        cursor = -1
    if cursor is not None and not 0 <= cursor <= MAX_BIGINT:
        # Posting ids are 64-bit; a number beyond that never came from next_cursor.
        return refuse("cursor", "must be a next_cursor this API returned")
    try:
        limit = min(1000, max(1, int(q.get("limit", "100"))))
    except ValueError:
        return refuse("limit", "must be a whole number")
    async with runtime.db.sessions() as s:
        page = await postings_page(s, state=state, integration=integration, cursor=cursor, limit=limit)
    return web.json_response(page)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        await runtime.db.answers()
    except Exception as exc:
        log.warning("health check failed: %s", type(exc).__name__)
        return web.json_response({"ok": False, "error": "database does not answer"}, status=503)
    return web.json_response({"ok": True})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; database-wide figures are read at scrape time.

    With ``LEDGEROPS_METRICS_TOKEN`` set the scraper must send it as a bearer token
    (the figures name integrations and error groups); unset, the route is open.
    """
    runtime = request.app[RUNTIME]
    token = runtime.env.ledgerops_metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            return web.json_response(
                {"error": "send Authorization: Bearer <LEDGEROPS_METRICS_TOKEN>"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
    await runtime.metrics.refresh(runtime.db, runtime.engine.clock())
    return web.Response(
        body=runtime.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
