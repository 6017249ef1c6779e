"""``POST /slack/events``: Events API, slash commands and interactivity, through bolt.

Before bolt sees a request, :mod:`bot.slack_guard` checks the signature and the
timestamp (401 otherwise, logged in one line without the body), refuses a
replay (200, nothing done: the first copy got its answer) and a body no Slack
request looks like (400). Bolt's own signature check is off: it would log a
refused body whole.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response

from bot.slack import SlackBot
from bot.slack_guard import bolt_request

SLACK = web.AppKey("slack", SlackBot)

log = logging.getLogger(__name__)


async def slack_events(request: web.Request) -> web.Response:
    """Check the request, then let bolt dispatch it."""
    bot = request.app[SLACK]
    raw = await request.read()
    assert bot.signed is not None  # HTTP mode always has a signing secret
    why = bot.signed.refusal(raw, request.headers)
    if why is not None:
        log.warning("slack request refused: %s", why, extra={"bytes": len(raw)})
        return web.json_response({"error": "invalid request"}, status=401)
    if not bot.signed.first_time(request.headers):
        log.warning("slack request refused: replayed (timestamp and signature seen before)")
        return web.Response(status=200)
    bolt_req = bolt_request(raw, request.query_string, request.headers)
    if bolt_req is None:
        log.warning("slack request refused: body is not one Slack sends", extra={"bytes": len(raw)})
        return web.json_response({"error": "could not read this request"}, status=400)
    with bot.receiving():
        return await to_aiohttp_response(await bot.app.async_dispatch(bolt_req))
