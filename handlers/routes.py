"""The one aiohttp application: ingest, read API, health and ``/slack/events``."""

from __future__ import annotations

from aiohttp import web

from bot.runtime import Runtime
from handlers import api, ingest
from handlers.commands import SlashCommands
from handlers.gate import AllowListGate
from handlers.home import HomeTab
from handlers.postings import ButtonActions
from handlers.slack_events import SLACK, slack_events


def build_web_app(runtime: Runtime) -> web.Application:
    """All HTTP routes of a ledgerops process on one application."""
    app = web.Application(client_max_size=ingest.MAX_BODY)
    app[ingest.RUNTIME] = runtime
    app.router.add_post("/api/v1/events", ingest.post_events)
    app.router.add_get("/api/v1/documents/{source}/{kind}/{id}", api.get_document)
    app.router.add_get("/api/v1/postings", api.list_postings)
    app.router.add_get("/healthz", api.healthz)
    app.router.add_get("/metrics", api.metrics)
    bot = runtime.slack
    if bot is not None:
        if not bot.listeners_registered:
            bot.app.use(AllowListGate(runtime, bot))  # one gate in front of every listener
            ButtonActions(runtime, bot).register(bot.app)
            SlashCommands(runtime, bot).register(bot.app)
            HomeTab(runtime, bot).register(bot.app)
            bot.listeners_registered = True
        if bot.http_mode:  # Socket Mode receives over its WebSocket; no unsigned door here
            app[SLACK] = bot
            app.router.add_post("/slack/events", slack_events)
    return app
