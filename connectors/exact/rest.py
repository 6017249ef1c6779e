"""Exact Online's REST calls: paced, signed in, under ``api/v1/{division}/``, OData ``d`` envelopes.

Calls are paced by the ``X-RateLimit-Minutely-*`` and ``X-RateLimit-*`` headers
(:class:`connectors.http.RatePacer`); every call goes through the shared classifier
:class:`connectors.http.LedgerHttp`, which renews a refused access token once.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from connectors.base import ConnectorError, RateLimitedError, RecordExistsError, decode_json
from connectors.exact.tokens import ExactSignIn
from connectors.http import LedgerHttp, RatePacer, Refusal


class ExactRest:
    """The calls of one Exact Online connector."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        name: str,
        sign_in: ExactSignIn,
        pacer: RatePacer,
        clock: Callable[[], float],
        division: Callable[[], Awaitable[int]],
    ):
        self.pacer = pacer
        self._clock = clock
        self._division = division
        self.api = LedgerHttp(
            http,
            system="Exact Online",
            record="entry",
            name=name,
            read_refusal=_error_text,
            own_failure=self._own_failure,
            token=sign_in.access_token,
            forget_token=sign_in.forget,
            before_call=pacer.before_call,
            after_answer=pacer.update,
            headers={"Accept": "application/json", "Prefer": "return=representation"},
        )

    async def _api_path(self, path: str) -> str:
        if path.startswith("docs/"):
            return path
        return f"api/v1/{await self._division()}/{path}"

    async def write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        """PUT/POST/DELETE ``body``; the record the answer's ``d`` holds (``{}`` for 204)."""
        resp = await self.send(method, path, body=body, write=True)
        assert resp is not None
        data = self.api.read(resp, write=True)
        if not isinstance(data, dict):
            return {}  # 204 No Content (PUT, DELETE)
        return data.get("d") or {}

    async def created(self, path: str, body: Any, key: str) -> dict[str, Any]:
        """POST a new record; an answer without its id cannot be recorded: look it up next time."""
        data = await self.write("POST", path, body)
        if not data.get(key):
            raise self.api.lost(f"its answer did not say the {key}")
        return data

    async def get_one(self, path: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The one record at ``path``, or ``None`` when Exact has none (404 or no row)."""
        resp = await self.send("GET", path, params=params, allow_404=True)
        if resp is None:
            return None
        d = (decode_json(resp.text) or {}).get("d") or {}
        if "results" in d:  # some entities answer a key look-up as a one-row list
            return d["results"][0] if d["results"] else None
        return d

    async def get_all(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, following ``__next`` (each page is a call and is paced)."""
        rows: list[dict[str, Any]] = []
        resp = await self.send("GET", path, params=params)
        while resp is not None:
            d = (decode_json(resp.text) or {}).get("d") or {}
            rows.extend(d.get("results") or [])
            next_url = d.get("__next")
            resp = await self.send("GET", str(next_url)) if next_url else None
        return rows

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        write: bool = False,
        allow_404: bool = False,
    ) -> httpx.Response | None:
        """One paced call through the shared classifier (a 401 renews the token once)."""
        url = path if path.startswith("http") else await self._api_path(path)
        return await self.api.send(
            method,
            url,
            params=params,
            body=body,
            content=content,
            content_type=content_type,
            write=write,
            allow=(404,) if allow_404 else (),
        )

    def _own_failure(self, resp: httpx.Response, refusal: Refusal, write: bool) -> ConnectorError | None:
        """Exact's own 4xx: "already exists" and a 429 paced by the minutely reset."""
        if refusal.status == 429 and refusal.retry_after is None and self.pacer.minutely_reset is not None:
            wait = max(0.0, self.pacer.minutely_reset - self._clock())
            return RateLimitedError(refusal.text or "Too many requests.", retry_after=wait)
        if refusal.status == 400 and re.search(r"already (exists|in use)|bestaat al", refusal.text, re.I):
            return RecordExistsError(refusal.text)
        return None


def _error_text(resp: httpx.Response) -> tuple[str, str | None]:
    """``error.message.value`` of Exact's error envelope (nothing from a gateway page)."""
    try:
        data = decode_json(resp.text)
    except ValueError:
        return "", None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        message = data["error"].get("message")
        if isinstance(message, dict):
            return str(message.get("value") or "").strip(), None
        return str(message or "").strip(), None
    return "", None
