"""The HTTP plumbing e-conomic, Procountor and Exact Online share: one failure classifier.

What a failed call means to the engine is decided here, once, by one rule: an
outcome is *known* only when the ledger refused definitely (a 4xx that explains
itself, 429 included) or the request provably never left (connection refused,
DNS, connect or pool timeout). Everything else after a write (any 5xx, 503
included, a redirect, a read timeout, a reset or dropped connection, an answer
that cannot be read) is an :class:`UnknownOutcomeError`: the next try looks the
record up by its idempotency key before writing again. After a read the same
failures are only :class:`TransientError`.

A 401 renews the sign-in once and repeats the call once (a refused token wrote
nothing). Each connector adds only what is its own: how to read its error body
(``read_refusal``) and its special refusals (``own_failure``, asked about 4xx
answers only, so no connector can excuse a 5xx after a write). :class:`RatePacer`
keeps calls inside an allowance announced in ``X-RateLimit-*`` headers (Exact's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.base import (
    AuthenticationError,
    ConnectorError,
    NeedsPersonError,
    RateLimitedError,
    TransientError,
    UnknownOutcomeError,
    decode_json,
    encode_json,
    retry_after_seconds,
)

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: transport failures raised before a byte of the request left this process
NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True)
class Refusal:
    """A non-2xx answer as the connector read it: the ledger's own text and field."""

    status: int
    text: str
    field: str | None = None
    retry_after: float | None = None


ReadRefusal = Callable[[httpx.Response], tuple[str, str | None]]
OwnFailure = Callable[[httpx.Response, Refusal, bool], ConnectorError | None]


def json_message(resp: httpx.Response) -> tuple[str, str | None]:
    """``message`` of a JSON error body; nothing from an HTML gateway page."""
    try:
        body = decode_json(resp.content)
    except ValueError:
        return "", None
    return (str(body.get("message") or "").strip() if isinstance(body, Mapping) else ""), None


def refusal_failure(refusal: Refusal, *, write: bool, system: str, record: str, name: str) -> ConnectorError:
    """A status in the engine's terms (see the module docstring for the rule)."""
    status, field = refusal.status, refusal.field
    text = refusal.text or f"{system} answered {status}."
    if status == 401:
        return AuthenticationError(f"{system} refused the access token of {name} even after renewing it.")
    if status == 429:
        return RateLimitedError(text, retry_after=refusal.retry_after)
    if status == 403:
        return NeedsPersonError(text, code="forbidden", field=field)
    if 400 <= status < 500:
        return NeedsPersonError(text, code="validation" if status == 400 else f"http_{status}", field=field)
    if write:
        return UnknownOutcomeError(
            f"{text} ({system} answered {status} after the {record} was sent; it may or may not exist.)",
            code=f"http_{status}",
        )
    return TransientError(text, code=f"http_{status}")


def transport_failure(
    exc: Exception, *, system: str, record: str, write: bool, timeout: float | None = None
) -> ConnectorError:
    """An httpx error in the engine's terms, never chaining it (it carries the headers)."""
    name = type(exc).__name__
    if isinstance(exc, NEVER_SENT):
        return TransientError(
            f"Could not connect to {system} ({name}).", code="unreachable", nothing_written=True
        )
    timed_out = isinstance(exc, httpx.TimeoutException)
    within = f" within {timeout:g} s" if timeout else ""
    if write and timed_out:
        return UnknownOutcomeError(
            f"{system} did not answer{within} after the {record} was sent; it may or may not exist.",
            code="timeout",
        )
    if write:
        return UnknownOutcomeError(
            f"The connection to {system} was lost after the {record} was sent ({name}); "
            "it may or may not exist.",
            code="connection_lost",
        )
    if timed_out:
        return TransientError(f"{system} did not answer{within}.", code="timeout")
    return TransientError(f"The connection to {system} was lost ({name}).", code="connection_lost")


class LedgerHttp:
    """One ledger's API over an httpx client, failing only with the typed errors of base.

    ``token``/``forget_token`` give a bearer token and drop a refused one (the 401
    renew-once loop); ``before_call``/``after_answer`` let Exact pace its calls.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        system: str,
        record: str,
        name: str,
        read_refusal: ReadRefusal = json_message,
        own_failure: OwnFailure | None = None,
        token: Callable[[], Awaitable[str]] | None = None,
        forget_token: Callable[[str], None] | None = None,
        before_call: Callable[[], Awaitable[None]] | None = None,
        after_answer: Callable[[httpx.Headers], None] | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        self.client = client
        self.system, self.record, self.name = system, record, name
        self._read_refusal, self._own_failure = read_refusal, own_failure
        self._token, self._forget_token = token, forget_token
        self._before_call, self._after_answer = before_call, after_answer
        self._headers = dict(headers or {})

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        write: bool = False,
        allow: Collection[int] = (),
    ) -> httpx.Response | None:
        """One call: the 2xx answer, ``None`` for an ``allow``-ed status, or a typed error."""
        if body is not None:
            content = encode_json(body)
        for attempt in (1, 2):
            headers = dict(self._headers)
            token = await self._token() if self._token is not None else None
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            if content is not None:
                headers["Content-Type"] = content_type
            if self._before_call is not None:
                await self._before_call()
            try:
                resp = await self.client.request(method, url, params=params, content=content, headers=headers)
            except httpx.RequestError as exc:
                log.warning(
                    "ledger call failed",
                    extra={"system": self.system, "method": method, "path": url, "error": type(exc).__name__},
                )
                raise self.transport_failure(exc, write=write) from None
            if self._after_answer is not None:
                self._after_answer(resp.headers)
            log.debug("ledger answered", extra={"system": self.system, "status": resp.status_code})
            if resp.status_code == 401 and attempt == 1 and token is not None:
                # An expired or revoked token: nothing was written, renew and repeat once.
                if self._forget_token is not None:
                    self._forget_token(token)
                continue
            if resp.status_code in allow:
                return None
            if not resp.is_success:
                raise self.failure(resp, write=write)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def failure(self, resp: httpx.Response, *, write: bool) -> ConnectorError:
        """A non-2xx answer as a typed error; the connector's own reading for 4xx only."""
        try:
            text, field = self._read_refusal(resp)
        except Exception:  # a body we cannot read must not hide the status
            text, field = "", None
        refusal = Refusal(resp.status_code, text, field, retry_after_seconds(resp.headers.get("Retry-After")))
        if 400 <= resp.status_code < 500 and self._own_failure is not None:
            own = self._own_failure(resp, refusal, write)
            if own is not None:
                return own
        return refusal_failure(refusal, write=write, system=self.system, record=self.record, name=self.name)

    def transport_failure(self, exc: Exception, *, write: bool) -> ConnectorError:
        return transport_failure(
            exc, system=self.system, record=self.record, write=write, timeout=self.client.timeout.read
        )

    def read(self, resp: httpx.Response, *, write: bool) -> Any:
        """The answer's JSON; after a write an unreadable answer is an unknown outcome."""
        try:
            return decode_json(resp.content)
        except ValueError:
            if write:
                raise self.lost("its answer is not JSON") from None
            raise TransientError(
                f"{self.system} answered with something that is not JSON.", code="unreadable_answer"
            ) from None

    def lost(self, why: str) -> UnknownOutcomeError:
        """The write got a 2xx we cannot use (no id, not JSON): look it up before writing again."""
        return UnknownOutcomeError(
            f"{self.system} accepted the {self.record}, but {why}; it is looked up before writing again.",
            code="unreadable_answer",
        )


class RatePacer:
    """Keeps one company's calls inside Exact's minutely and daily allowances.

    It reads the remaining counts and reset times from every answer and, before
    each call, waits for the minutely reset once nothing remains. A wait longer
    than ``max_wait`` (the daily allowance, or a reset too far off to hold a
    worker for) raises :class:`RateLimitedError` without calling, with the time
    to wait in ``retry_after``.
    """

    def __init__(self, clock: Clock, sleep: Sleep, *, max_wait: float, margin: float):
        self._clock, self._sleep = clock, sleep
        self.max_wait, self.margin = max_wait, margin
        self.minutely_remaining: int | None = None
        self.minutely_reset: float | None = None
        self.daily_remaining: int | None = None
        self.daily_reset: float | None = None
        self.waited = 0.0  # seconds spent waiting (for tests and benchmarks)
        self._lock = asyncio.Lock()

    async def before_call(self) -> None:
        """Wait (or refuse) until a call fits in the allowance; reserve it."""
        async with self._lock:
            now = self._clock()
            if (
                self.daily_remaining is not None
                and self.daily_remaining <= 0
                and self.daily_reset is not None
                and self.daily_reset > now
            ):
                raise RateLimitedError(
                    "The daily Exact Online allowance of this company is used up.",
                    code="daily_limit",
                    retry_after=self.daily_reset - now + self.margin,
                )
            if (
                self.minutely_remaining is not None
                and self.minutely_remaining <= 0
                and self.minutely_reset is not None
            ):
                wait = self.minutely_reset - now + self.margin
                if wait > self.max_wait:
                    raise RateLimitedError(
                        "The per-minute Exact Online allowance of this company is used up.", retry_after=wait
                    )
                if wait > 0:
                    self.waited += wait
                    await self._sleep(wait)
                # A new window: the next answer tells the real count.
                self.minutely_remaining = None
            # Reserve this call so a concurrent caller does not overshoot.
            if self.minutely_remaining is not None:
                self.minutely_remaining -= 1
            if self.daily_remaining is not None:
                self.daily_remaining -= 1

    def update(self, headers: Mapping[str, str]) -> None:
        """Take the allowance from an answer's ``X-RateLimit-*`` headers."""

        def number(name: str) -> int | None:
            value = headers.get(name)
            try:
                return int(value) if value not in (None, "") else None
            except ValueError:
                return None

        remaining, reset = number("X-RateLimit-Minutely-Remaining"), number("X-RateLimit-Minutely-Reset")
        if remaining is not None:
            self.minutely_remaining = remaining
        if reset is not None:
            self.minutely_reset = reset / 1000  # epoch milliseconds
        remaining, reset = number("X-RateLimit-Remaining"), number("X-RateLimit-Reset")
        if remaining is not None:
            self.daily_remaining = remaining
        if reset is not None:
            self.daily_reset = reset / 1000
