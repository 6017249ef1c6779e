"""The stand-in's Web API alone on a loopback port, able to go down without giving the port up.

Tests start the Web API on its own (no page, no bot beside it). Going down
keeps a bound socket that does not listen on the port, so connections are
refused (what a client sees when Slack is unreachable) and no other process
can take the port meanwhile; coming back listens on the same port again.
"""

from __future__ import annotations

import socket

from aiohttp import web

from bot.local_slack.answers import Answers
from bot.local_slack.web_api import WebApi

HOST = "127.0.0.1"


def _socket(port: int, *, listen: bool) -> socket.socket:
    # SO_REUSEPORT lets the idle holder and the listening socket share the port for a moment.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    if listen:
        sock.listen(128)
        sock.setblocking(False)
    return sock


class ApiSite:
    """``http://127.0.0.1:<port>{prefix}/{method}`` answered by one :class:`WebApi`, and the
    workspace's ``response_url`` hooks at ``/slack-hooks/{token}`` (each post logged as a
    ``response_url`` call)."""

    def __init__(self, api: WebApi, prefix: str = "/api"):
        self.api = api
        self.answers = Answers(api.ws)
        self.prefix = prefix
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._holder: socket.socket | None = None

    @property
    def url(self) -> str:
        """The Web API's base URL (``SLACK_API_URL``), with its trailing slash."""
        return f"http://{HOST}:{self.port}{self.prefix}/"

    def response_url(self, user: str, channel: str) -> str:
        """A fresh ``response_url`` for a command ``user`` typed in ``channel``."""
        return f"http://{HOST}:{self.port}/slack-hooks/{self.api.ws.new_hook(user, channel, 'command', None)}"

    async def _hook(self, request: web.Request) -> web.Response:
        try:  # aiohttp keeps the body, so the hook reads it again
            body = await request.json() if request.content_type == "application/json" else None
        except ValueError:
            body = None
        call = (
            self.api.calls.record("response_url", body) if self.api.calls and isinstance(body, dict) else None
        )
        response = await self.answers.hook(request)
        if call is not None:
            call.status, call.ok = response.status, response.status == 200
        return response

    async def start(self) -> None:
        """Listen on a free loopback port."""
        app = web.Application()
        self.api.mount(app, self.prefix)
        app.router.add_post("/slack-hooks/{token}", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        sock = _socket(self.port, listen=True)
        self.port = sock.getsockname()[1]
        self._site = web.SockSite(self._runner, sock)
        await self._site.start()
        if self._holder is not None:
            self._holder.close()
            self._holder = None

    async def go_down(self) -> None:
        """Refuse new connections (the port stays ours); answer 503 on any still open."""
        self.api.faults.down = True
        if self._site is not None:
            self._holder = _socket(self.port, listen=False)
            await self._site.stop()
            self._site = None

    async def come_back(self) -> None:
        """Listen again on the same port."""
        self.api.faults.down = False
        if self._site is None:
            await self._listen()

    async def stop(self) -> None:
        """Stop serving and let the port go."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._holder is not None:
            self._holder.close()
            self._holder = None
