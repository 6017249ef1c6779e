"""``POST /slack/events``: Events API, slash commands and interactivity, through bolt.

Bolt checks the signature and the timestamp (401 otherwise) before any
listener runs; this handler only translates between aiohttp and bolt.
"""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.slack import SlackBot

SLACK = web.AppKey("slack", SlackBot)


async def slack_events(request: web.Request) -> web.Response:
    bot = request.app[SLACK]
    with bot.receiving():
        bolt_response = await bot.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)
