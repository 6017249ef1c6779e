"""Apply a write, then lose its answer: the fault every fake ledger can be switched into.

A real ledger (or the proxy in front of it) can save a record and still answer
500, 502 or 504, keep the client waiting past its read timeout, or drop the
connection. :class:`LostAnswer` is an aiohttp middleware that lets the fake's
handler do the write, then replaces the answer in one of those ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

#: the ways an answer is lost after the write took effect
MODES = ("500", "502", "504", "timeout", "drop")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_GATEWAY_PAGE = "<html><body><h1>{status} {reason}</h1></body></html>"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorAnswer = Callable[[int], web.Response]


class LostAnswer:
    """A switch: the next matching write is applied, then its answer is lost.

    ``arm(mode, skip=n)`` lets ``n`` successful writes through first, so a test can
    lose the answer of the second step of an update (delete, then repost).
    Sign-in calls (paths containing ``oauth``) are never counted as writes.
    """

    def __init__(self, error_answer: ErrorAnswer | None = None):
        self.mode: str | None = None
        self.skip = 0
        self.fired = 0  # answers lost so far (tests check the fault happened)
        self._error_answer = error_answer
        self._release = asyncio.Event()

    def arm(self, mode: str, *, skip: int = 0) -> None:
        """Lose the answer of the write after the next ``skip`` successful ones ("" = off)."""
        if mode and mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.mode, self.skip = mode or None, skip

    def release(self) -> None:
        """End every hanging answer (the fake is stopping)."""
        self._release.set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if (
            self.mode is None
            or request.method not in WRITE_METHODS
            or "oauth" in request.path
            or response.status >= 300
        ):
            return response
        if self.skip > 0:
            self.skip -= 1
            return response
        mode, self.mode = self.mode, None
        self.fired += 1
        if mode == "timeout":
            # Silent until the client gives up on its read timeout (or the fake stops).
            await self._release.wait()
        if mode in ("timeout", "drop"):
            if request.transport is not None:
                request.transport.close()
            return response
        status = int(mode)
        if status == 500 and self._error_answer is not None:
            return self._error_answer(status)  # the ledger's own error document
        # 502 and 504 come from the gateway in front of the ledger: an HTML page.
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 504: "Gateway Timeout"}[status]
        return web.Response(
            status=status, text=_GATEWAY_PAGE.format(status=status, reason=reason), content_type="text/html"
        )
