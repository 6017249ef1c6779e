"""Read API and health: ``GET /api/v1/documents/...``, ``/api/v1/postings``, ``/healthz``."""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from sqlalchemy import text

from handlers.ingest import RUNTIME, bearer_ok
from storage.states import PostingState
from sync.log import document_view, postings_page

log = logging.getLogger(__name__)


async def get_document(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    if (refusal := bearer_ok(request, runtime)) is not None:
        return refusal
    m = request.match_info
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
        return web.json_response(
            {
                "errors": [
                    {
                        "index": None,
                        "field": "state",
                        "message": "expected one of " + ", ".join(s.value for s in PostingState),
                    }
                ]
            },
            status=400,
        )
    integration = q.get("integration")
    if integration and integration not in runtime.engine.integrations:
        return web.json_response(
            {
                "errors": [
                    {"index": None, "field": "integration", "message": f"unknown integration '{integration}'"}
                ]
            },
            status=400,
        )
    cursor_raw = q.get("cursor")
    try:
        cursor = int(cursor_raw) if cursor_raw else None
        limit = min(1000, max(1, int(q.get("limit", "100"))))
    except ValueError:
        return web.json_response(
            {
                "errors": [
                    {
                        "index": None,
                        "field": "cursor" if cursor_raw else "limit",
                        "message": "must be a whole number",
                    }
                ]
            },
            status=400,
        )
    async with runtime.db.sessions() as s:
        page = await postings_page(s, state=state, integration=integration, cursor=cursor, limit=limit)
    return web.json_response(page)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with runtime.db.sessions() as s:
            await s.execute(text("SELECT 1"))
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
