"""One Web API call from the outbox, and what its outcome means for a retry.

Slack's ``chat.postMessage`` has no idempotency key, so the outbox sorts every
outcome into:

- ``OK``: Slack answered ``ok: true``.
- ``REFUSED``: Slack answered and did not do it (``ok: false``, HTTP 503, an
  HTML error page): safe to send again later.
- ``RATE_LIMITED``: HTTP 429; not done; wait ``Retry-After`` seconds.
- ``UNREACHABLE``: no connection could be opened; nothing was sent; retry.
- ``UNKNOWN``: the request left and no answer came back (timeout, dropped
  connection, HTTP 500/502/504). A post may exist: before it is sent again the
  outbox looks for it in the channel's history (``bot/outbox/unconfirmed_posts.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

#: statuses that say the request was not processed (Slack's edge turned it away)
NOT_PROCESSED_STATUSES = frozenset({503})


class Delivery(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    RATE_LIMITED = "rate_limited"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CallResult:
    """What came back from Slack, classified."""

    delivery: Delivery
    data: dict[str, Any]
    error: str = ""
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.delivery is Delivery.OK


async def call(request: Awaitable[Any], what: str) -> CallResult:
    """Await one Web API call; never raises for a Slack or network failure."""
    try:
        response = await request
    except SlackApiError as exc:
        return _api_error(exc, what)
    except aiohttp.ClientConnectorError as exc:
        # The TCP (or TLS) connection never opened: nothing reached Slack.
        return CallResult(Delivery.UNREACHABLE, {}, f"cannot reach Slack ({type(exc).__name__})")
    except (TimeoutError, aiohttp.ClientError) as exc:
        return CallResult(Delivery.UNKNOWN, {}, f"no answer from Slack ({type(exc).__name__})")
    data = dict(response.data) if isinstance(response.data, dict) else {}
    return CallResult(Delivery.OK, data)


def _api_error(exc: SlackApiError, what: str) -> CallResult:
    response = exc.response
    # a body that was not JSON leaves aiohttp's response here (``status``, not ``status_code``)
    status = getattr(response, "status_code", None) or getattr(response, "status", 0) or 0
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    error = str(data.get("error") or f"HTTP {status}")
    if status == 429:
        headers = getattr(response, "headers", {}) or {}
        raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        if isinstance(raw, list):
            raw = raw[0] if raw else None
        try:
            wait = max(0.0, float(raw)) if raw is not None else 1.0
        except ValueError:
            wait = 1.0
        return CallResult(Delivery.RATE_LIMITED, data, "rate limited", wait)
    if status == 200 and data.get("ok") is False:
        log.warning("slack refused %s: %s", what, error)
        return CallResult(Delivery.REFUSED, data, error)
    if status in NOT_PROCESSED_STATUSES or 400 <= status < 500:
        return CallResult(Delivery.REFUSED, data, error)
    # 500, 502, 504 ...: the request may have been processed before things broke.
    return CallResult(Delivery.UNKNOWN, data, error)


#: told about every Web API call the outbox makes: (method, classified result); metrics
CallListener = Callable[[str, CallResult], None]


class ReportedCalls:
    """The outbox's Web API calls, each classified and told to the call listeners."""

    def __init__(self) -> None:
        #: told after every call (``bot/runtime.py`` feeds the metrics from here)
        self.listeners: list[CallListener] = []

    async def __call__(self, request: Awaitable[object], method: str, what: str | None = None) -> CallResult:
        """One Web API call, classified, and reported to the call listeners."""
        result = await call(request, what or method)
        for listener in self.listeners:
            try:
                listener(method, result)
            except Exception:  # metrics must never stop a message
                log.exception("call listener failed")
        return result
