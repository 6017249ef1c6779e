"""The one aiohttp application: ingest, read API, health (Slack routes join it)."""

from __future__ import annotations

from aiohttp import web

from bot.runtime import Runtime
from handlers import api, ingest


def build_web_app(runtime: Runtime) -> web.Application:
    """All HTTP routes of a ledgerops process on one application."""
    app = web.Application(client_max_size=ingest.MAX_BODY)
    app[ingest.RUNTIME] = runtime
    app.router.add_post("/api/v1/events", ingest.post_events)
    app.router.add_get("/api/v1/documents/{source}/{kind}/{id}", api.get_document)
    app.router.add_get("/api/v1/postings", api.list_postings)
    app.router.add_get("/healthz", api.healthz)
    return app
