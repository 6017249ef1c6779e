"""The bolt ``AsyncApp`` and the Web API clients of one process.

HTTP mode: Slack posts to ``/slack/events`` on our aiohttp application, and
:mod:`bot.slack_guard` verifies every request with ``SLACK_SIGNING_SECRET``
before bolt sees it (401 otherwise, also for a timestamp more than five minutes
old; a replay runs nothing). Socket Mode: with ``SLACK_APP_TOKEN`` the same app
receives over a WebSocket and the HTTP route is not mounted. Either way only
the workspace of the bot token (``auth.test``, asked at start-up) is served.

Two clients share one connection pool:

- ``client`` (listeners: ephemeral answers, user-group look-ups) retries 429
  after ``Retry-After`` and dropped connections, with slack_sdk's handlers;
- ``outbox_client`` (the notifier) retries only a connection that never
  opened. The outbox itself waits out 429s on the engine's clock, and it
  must never repeat a post that may already be in the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.kwargs_injection.async_utils import build_async_required_kwargs
from slack_bolt.lazy_listener.async_runner import AsyncLazyListenerRunner
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.util.utils import get_arg_names_of_callable, get_name_for_callable
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.auth import Clock, Gatekeeper
from bot.config import ConfigError, ConfigFile, Environment
from bot.outbox.delivery import call
from bot.slack_guard import SameWorkspace, SignedRequests

log = logging.getLogger(__name__)

CALL_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)
#: actions worked on at once; more wait their turn (each is a short database transaction)
WORK_SLOTS = 2
#: the longest an action's work waits for a burst of requests to be answered
WORK_DELAY_MAX = 0.5
#: the longest a request waits for ``auth.test`` before it is dropped (Slack acks in 3 s)
WORKSPACE_WAIT = 2.0
#: after a failed ``auth.test``, requests are dropped at once for this long (no pile-up)
WORKSPACE_RETRY = 10.0


LazyFunction = Callable[..., Awaitable[None]]
F = TypeVar("F", bound=LazyFunction)


def urgent(function: F) -> F:
    """Mark a lazy listener whose work must reach Slack within seconds of the click.

    Like ``views.open``: its trigger_id expires in 3 s, so it starts at once,
    beside the others, instead of waiting its turn.
    """
    target = getattr(function, "__func__", function)  # a bound method: mark its function
    target.urgent = True
    return function


class LazyWork(AsyncLazyListenerRunner):
    """Runs bolt's lazy listeners (the work after an ack): after the acks, a few at a time.

    One event loop serves the acks and the work: when fifty people click at once,
    all fifty are answered first (Slack's 3 s clock runs), then the work goes,
    ``WORK_SLOTS`` at a time, each waiting (at most ``WORK_DELAY_MAX``) while
    requests are being answered. Every task is tracked from the moment bolt
    hands it over, so :meth:`idle` sees it before it has started.
    """

    def __init__(self, logger: logging.Logger):
        self.logger = logger
        #: requests on /slack/events being answered right now
        self.inflight = 0
        self._quiet = asyncio.Event()
        self._slots = asyncio.Semaphore(WORK_SLOTS)
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def receiving(self) -> Iterator[None]:
        """Count a request being answered (the HTTP route wraps each dispatch in this)."""
        self.inflight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.inflight -= 1
            if not self.inflight:
                self._quiet.set()

    @staticmethod
    def lazy_request(request: AsyncBoltRequest, lazy_function_name: str) -> AsyncBoltRequest:
        """The request a lazy listener gets: a shallow copy with its own context.

        Bolt deep-copies it, which fails on the clients of our shared aiohttp
        session (and costs the ack time); nothing changes the request after its
        ack, so the body and the clients are shared.
        """
        copied = copy.copy(request)
        copied.context = AsyncBoltContext(request.context)
        copied.lazy_only = True
        copied.lazy_function_name = lazy_function_name
        return copied

    def start(self, function: LazyFunction, request: AsyncBoltRequest) -> None:
        """Bolt hands over a lazy listener after the ack: run it in its turn."""
        self.spawn(
            self._call(function, request),
            name=get_name_for_callable(function),
            urgent=getattr(function, "urgent", False),
        )

    def spawn(self, work: Coroutine[Any, Any, Any], name: str, *, urgent: bool = False) -> None:
        """Run work that is no listener's (the gate's refusals) the same way."""
        task = asyncio.create_task(self._turn(work, urgent), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, function: LazyFunction, request: AsyncBoltRequest) -> None:
        kwargs = build_async_required_kwargs(
            logger=self.logger,
            required_arg_names=get_arg_names_of_callable(function),
            request=request,
            response=None,
            this_func=function,
        )
        await function(**kwargs)

    async def _turn(self, work: Coroutine[Any, Any, Any], urgent: bool) -> None:
        try:
            if urgent:
                await work
                return
            async with self._slots:
                if self.inflight:  # answer the requests in flight first
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._quiet.wait(), WORK_DELAY_MAX)
                await work
        except Exception:
            log.exception("slack action failed")
        finally:
            work.close()  # not started (cancelled while waiting): no "never awaited" warning

    async def idle(self) -> None:
        """Wait until every piece of work handed over so far has finished (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass
class SlackBot:
    """Bolt app, clients and the work of the clicks in flight."""

    app: AsyncApp
    client: AsyncWebClient
    outbox_client: AsyncWebClient
    session: aiohttp.ClientSession
    gatekeeper: Gatekeeper
    app_token: str | None = None
    #: the signature and replay checks of ``/slack/events`` (HTTP mode)
    signed: SignedRequests | None = None
    #: the workspace of the bot token, from ``auth.test``
    team_id: str | None = None
    socket_mode: Any = None
    listeners_registered: bool = False
    #: the lazy listeners' work (see :class:`LazyWork`)
    work: LazyWork = field(default_factory=lambda: LazyWork(log))
    _auth_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _auth_retry_at: float = 0.0

    @property
    def http_mode(self) -> bool:
        """Requests arrive on ``/slack/events`` (else over Socket Mode)."""
        return self.app_token is None

    def receiving(self) -> contextlib.AbstractContextManager[None]:
        """Count a request being answered (see :meth:`LazyWork.receiving`)."""
        return self.work.receiving()

    async def idle(self) -> None:
        """Wait until the work of every click so far has finished (tests, shutdown)."""
        await self.work.idle()

    async def workspace(self) -> str | None:
        """The bot token's workspace id: ``auth.test`` once, asked again after a failure."""
        if self.team_id is not None:
            return self.team_id
        loop = asyncio.get_running_loop()
        async with self._auth_lock:  # a burst of first requests asks Slack once
            if self.team_id is None and loop.time() >= self._auth_retry_at:
                await self._ask_workspace()
                if self.team_id is None:  # drop requests at once for a while, not one by one
                    self._auth_retry_at = loop.time() + WORKSPACE_RETRY
        return self.team_id

    async def _ask_workspace(self) -> None:
        try:
            result = await asyncio.wait_for(call(self.client.auth_test(), "auth.test"), WORKSPACE_WAIT)
        except TimeoutError:
            log.warning("auth.test did not answer; Slack requests are dropped until it does")
            return
        if result.ok and isinstance(result.data.get("team_id"), str):
            self.team_id = result.data["team_id"]
        else:
            log.warning("auth.test failed (%s); Slack requests are dropped until it answers", result.error)

    async def start(self) -> None:
        """Learn our workspace and the allowed user group; connect Socket Mode."""
        await self.workspace()
        if self.gatekeeper.usergroup:
            await self.gatekeeper.group_members()  # the first click need not wait for Slack
        if self.app_token is not None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self.socket_mode = AsyncSocketModeHandler(self.app, self.app_token, web_client=self.client)
            await self.socket_mode.connect_async()
            log.info("slack: connected over Socket Mode")

    async def stop(self) -> None:
        """Stop receiving; let the actions in flight finish."""
        if self.socket_mode is not None:
            await self.socket_mode.close_async()
            self.socket_mode = None
        await self.idle()

    async def aclose(self) -> None:
        """Close the connection pool (after the notifier stopped using it)."""
        await self.session.close()


def web_clients(env: Environment, session: aiohttp.ClientSession) -> tuple[AsyncWebClient, AsyncWebClient]:
    """The listeners' client and the outbox's client (see the module docstring)."""
    assert env.slack_bot_token is not None
    token = env.slack_bot_token.get_secret_value()
    quick = BackoffRetryIntervalCalculator(backoff_factor=0.2)
    client = AsyncWebClient(
        token=token,
        base_url=env.slack_api_url,
        session=session,
        timeout=int(CALL_TIMEOUT.total or 20),
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=1),
            AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=quick),
        ],
    )
    outbox_client = AsyncWebClient(
        token=token,
        base_url=env.slack_api_url,
        session=session,
        timeout=int(CALL_TIMEOUT.total or 20),
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(
                max_retry_count=1, interval_calculator=quick, error_types=[aiohttp.ClientConnectorError]
            )
        ],
    )
    return client, outbox_client


def build_slack_bot(env: Environment, config: ConfigFile, clock: Clock) -> SlackBot | None:
    """The Slack side of the process, or ``None`` without a bot token (sandbox mode)."""
    if env.slack_bot_token is None:
        return None
    app_token = env.slack_app_token.get_secret_value() if env.slack_app_token else None
    secret = env.slack_signing_secret.get_secret_value() if env.slack_signing_secret else None
    if app_token is None and secret is None:
        raise ConfigError(
            "SLACK_SIGNING_SECRET: required with SLACK_BOT_TOKEN in HTTP mode "
            "(or set SLACK_APP_TOKEN for Socket Mode)"
        )
    session = aiohttp.ClientSession(timeout=CALL_TIMEOUT)
    client, outbox_client = web_clients(env, session)
    app = AsyncApp(
        client=client,
        signing_secret=secret,
        # HTTP mode: handlers/slack_events.py verifies before bolt (bolt would log a refused
        # body whole); Socket Mode frames are not signed, and no HTTP route is mounted there.
        request_verification_enabled=False,
        # Listeners ack, and bolt answers as soon as they return (instead of polling for
        # the ack every 10 ms); the work after the ack is a lazy listener (LazyWork).
        process_before_response=True,
        raise_error_for_unhandled_request=False,
    )
    bot = SlackBot(
        app=app,
        client=client,
        outbox_client=outbox_client,
        session=session,
        gatekeeper=Gatekeeper(config.slack, client, clock),
        app_token=app_token,
        signed=SignedRequests(secret) if secret is not None else None,
    )
    # bolt's lazy listeners, run our way (LazyWork); the hook replaces bolt's deep copy
    app.listener_runner.lazy_listener_runner = bot.work
    app.listener_runner._build_lazy_request = bot.work.lazy_request  # type: ignore[method-assign]
    app.use(SameWorkspace(bot.workspace))  # the first of our middleware: before the allow-list
    return bot
