"""The outbox sender: Slack messages rebuilt from the database, posted, updated, threaded.

- The engine's change feed only says *which* subjects changed; the notifier
  records that in ``slack_messages`` (``storage/queries/outbox.py``) and renders from the
  database when it sends, so a message always shows the state of now.
- A posting that needs a person gets a message after a short grouping window;
  if by then more postings fail with the same error-group fingerprint, one
  group message ("37 bills: Account 2800 does not exist.") replaces them.
- ``chat.postMessage`` goes out at most once per second per channel; 429
  pauses the channel for ``Retry-After``; a Slack outage leaves rows waiting
  with backoff. A post whose outcome is unknown (a 500, a lost answer) is
  looked up in the channel's history by its message metadata before it is
  sent again (``bot/unconfirmed_posts.py``): found -> adopted, else posted.
- Time is the engine's clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.coverage import GROUP, POSTING, Coverage
from bot.delivery import CallResult, Delivery, call
from bot.log_blocks import thread_reply
from bot.notices import attempts_after
from bot.rendering import Rendered, render
from bot.unconfirmed_posts import PostResolver, Resolution, post_metadata
from storage.models import SlackMessage
from storage.queries import outbox
from storage.queries.groups import group_muted_until, posting_group_muted_until
from storage.states import MessageState
from sync.changes import Change
from sync.engine import Engine

log = logging.getLogger(__name__)

#: errors after which an update can never land: post the message anew
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

#: told about every Web API call the outbox makes: (method, classified result); metrics
CallListener = Callable[[str, CallResult], None]


@dataclass(frozen=True)
class OutboxSettings:
    """Pace and patience of the sender."""

    group_window: float = 5.0  # a first failure waits this long for others like it
    post_interval: float = 1.0  # Slack allows one chat.postMessage per second per channel
    claim_seconds: float = 120.0  # a send longer than this is taken as lost (outcome unknown)
    backoff_base: float = 2.0
    backoff_max: float = 300.0
    poll_seconds: float = 5.0
    # A busy worker reports hundreds of changes a second: one pass per quarter second
    # takes them together (a person sees the message change a moment later at most).
    coalesce_seconds: float = 0.25
    batch: int = 100


@dataclass
class FlushReport:
    """What one pass did; ``next_due`` is when something will be due again."""

    posted: int = 0
    updated: int = 0
    threaded: int = 0
    dropped: int = 0
    deferred: int = 0
    failed: int = 0
    next_due: datetime | None = None


class Notifier:
    """Keeps the finance channel in step with the database."""

    def __init__(
        self,
        engine: Engine,
        client: AsyncWebClient,
        default_channel: str | None,
        settings: OutboxSettings | None = None,
    ):
        self.engine = engine
        self.db = engine.db
        self.clock = engine.clock
        self.client = client
        self.default_channel = default_channel
        self.settings = settings or OutboxSettings()
        self._pending: list[Change] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._next_post: dict[str, datetime] = {}
        self._paused: dict[str, datetime] = {}
        self._all_paused: datetime | None = None
        self._expiry_check: datetime | None = None
        self.resolver = PostResolver(
            self.db, self.clock, self._read_history, timedelta(seconds=self.settings.claim_seconds)
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.coverage = Coverage(self.channel_of, self.settings.group_window)
        #: told after every Web API call (``bot/runtime.py`` feeds the metrics from here)
        self.call_listeners: list[CallListener] = []
        engine.feed.subscribe(self._on_changes)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Catch up with what happened while no one listened, then send in the background."""
        await self.reconcile()
        self._task = asyncio.create_task(self._run(), name="ledgerops-notifier")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            report = None
            try:
                report = await self.flush()
            except Exception:
                log.exception("notifier pass failed")
            wait = self.settings.poll_seconds
            if report is not None and report.next_due is not None:
                wait = (report.next_due - self.clock()).total_seconds()
                wait = min(self.settings.poll_seconds, max(0.05, wait))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            if not self._stopping:
                await asyncio.sleep(self.settings.coalesce_seconds)  # ok-sleep: batches a burst

    def _on_changes(self, changes: list[Change]) -> None:
        # Called inside the engine's code path: only remember, never do I/O here.
        self._pending.extend(changes)
        self._wake.set()

    def poke(self) -> None:
        """Rows were queued outside the change feed (a scheduled job): send soon."""
        self._wake.set()

    # -- where messages go ------------------------------------------------------------------
    def channel_of(self, integration_id: int) -> str | None:
        """The integration's channel, else the default one; ``None``: no Slack for it."""
        name = next((n for n, i in self.engine.integration_ids.items() if i == integration_id), None)
        cfg = self.engine.integrations.get(name or "")
        return (cfg.channel if cfg and cfg.channel else None) or self.default_channel

    # -- recording changes --------------------------------------------------------------------
    async def _absorb(self) -> None:
        changes, self._pending = self._pending, []
        if changes:
            async with self.db.sessions() as s, s.begin():
                await self.coverage.record(s, changes, self.clock())

    async def reconcile(self) -> None:
        """Start-up: posts lost with a dead process, failures without a message, stale messages."""
        async with self.db.sessions() as s, s.begin():
            await self.coverage.catch_up(s, self.clock())

    async def _expire_lost_posts(self) -> None:
        # A sender (maybe another process) that claimed a post and never finished it:
        # its outcome is unknown. Checked once per claim period, not on every pass.
        now = self.clock()
        if self._expiry_check and now < self._expiry_check:
            return
        self._expiry_check = now + timedelta(seconds=self.settings.claim_seconds)
        async with self.db.sessions() as s, s.begin():
            lost = await outbox.expire_sending(s, now)
        if lost:
            log.warning("%d Slack posts have an unknown outcome; looking for them in the channel", lost)

    # -- sending ---------------------------------------------------------------------------
    async def flush(self) -> FlushReport:
        """Send everything due now (tests await this instead of sleeping)."""
        async with self._lock:
            report = FlushReport()
            self.resolver.new_pass()
            await self._absorb()
            await self._expire_lost_posts()
            for _ in range(1000):
                now = self.clock()
                if self._all_paused and self._all_paused > now:
                    break
                async with self.db.sessions() as s:
                    rows = list(await outbox.due_rows(s, now, self.settings.batch))
                    s.expunge_all()
                if not rows:
                    break
                for row in rows:
                    if self._all_paused and self._all_paused > self.clock():
                        break
                    try:
                        await self._step(row, report)
                    except Exception:
                        # A bug or the database: try again later. Guarded by the row's state,
                        # so a post already claimed stays claimed (never sent twice).
                        log.exception("sending outbox row %s failed", row.id)
                        await self._defer(
                            row, self.clock() + timedelta(seconds=self.settings.backoff_max / 10), report
                        )
            async with self.db.sessions() as s:
                due = await outbox.next_due(s)
            if due is not None and self._all_paused and self._all_paused > due:
                due = self._all_paused  # nothing goes out before Slack is tried again
            report.next_due = due
            return report

    async def _step(self, row: SlackMessage, report: FlushReport) -> None:
        now = self.clock()
        paused = self._paused.get(row.channel)
        if paused and paused > now:
            await self._defer(row, paused, report)
            return
        if row.state == MessageState.UNCONFIRMED:
            await self._resolve(row, report)
            return
        if row.state == MessageState.TO_POST:
            ready = self._next_post.get(row.channel)
            if ready and ready > now:
                await self._defer(row, ready, report)
                return
        async with self.db.sessions() as s, s.begin():
            quiet = await self._muted_until(s, row, now)
            if quiet is not None:
                # A muted error group stays quiet; at ``muted_until`` the row is due again
                # and the message shows the state of then.
                await outbox.defer(s, row, quiet, now)
                report.deferred += 1
                return
            rendered = await render(s, row, now)
            if rendered is None:
                if row.ts is None:
                    await outbox.drop(s, row.id)
                    report.dropped += 1
                else:
                    await outbox.settle(
                        s,
                        row.id,
                        row.revision,
                        now,
                        rendered_hash=row.rendered_hash or "",
                        subject_status=row.subject_status or "",
                    )
                return
            if not await outbox.claim(s, row, now, timedelta(seconds=self.settings.claim_seconds)):
                return  # another sender has it
        if row.state == MessageState.TO_POST:
            await self._post(row, rendered, report)
        else:
            await self._update(row, rendered, report)

    async def _muted_until(self, s: AsyncSession, row: SlackMessage, now: datetime) -> datetime | None:
        """Until when this row must wait because its error group is muted (``None``: go).

        A group's own message is neither posted nor updated; a posting's first message
        waits too when its failure belongs to a muted group. Updates of a posting's
        message go out: they answer a person's click.
        """
        if row.subject_type == GROUP:
            until = await group_muted_until(s, int(row.subject_id))
        elif row.subject_type == POSTING and row.state == MessageState.TO_POST:
            until = await posting_group_muted_until(s, int(row.subject_id))
        else:
            return None
        return until if until is not None and until > now else None

    async def _call(self, request: Awaitable[object], method: str, what: str | None = None) -> CallResult:
        """One Web API call, classified, and reported to the call listeners."""
        result = await call(request, what or method)
        for listener in self.call_listeners:
            try:
                listener(method, result)
            except Exception:  # metrics must never stop a message
                log.exception("call listener failed")
        return result

    def _read_history(self, **args: object) -> Awaitable[CallResult]:
        return self._call(self.client.conversations_history(**args), "conversations.history")  # type: ignore[arg-type]

    async def _post(self, row: SlackMessage, r: Rendered, report: FlushReport) -> None:
        self._next_post[row.channel] = self.clock() + timedelta(seconds=self.settings.post_interval)
        result = await self._call(
            self.client.chat_postMessage(
                channel=row.channel,
                text=r.body.text,
                blocks=r.body.blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata=post_metadata(
                    row.id,
                    row.created_at,
                    f"{row.subject_type}:{row.subject_id}",
                    r.body.hash,
                    r.status,
                    r.last_attempt,
                ),
            ),
            "chat.postMessage",
        )
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            if result.ok:
                await outbox.settle(
                    s,
                    row.id,
                    row.revision,
                    now,
                    rendered_hash=r.body.hash,
                    subject_status=r.status,
                    ts=str(result.data.get("ts")),
                    threaded_attempt_id=r.last_attempt,
                )
                report.posted += 1
                return
            if result.delivery is Delivery.UNKNOWN:
                log.warning(
                    "post of outbox row %s has an unknown outcome (%s); the channel is read before "
                    "it is sent again",
                    row.id,
                    result.error,
                )
                await outbox.unconfirmed(s, row.id, result.error, now, r.status, now + self._backoff(row))
                report.failed += 1
                return
        await self._retry(row, MessageState.TO_POST, result.error, report, result)

    async def _update(self, row: SlackMessage, r: Rendered, report: FlushReport) -> None:
        if r.body.hash != row.rendered_hash:
            result = await self._call(
                self.client.chat_update(
                    channel=row.channel, ts=row.ts, text=r.body.text, blocks=r.body.blocks
                ),
                "chat.update",
            )
            if not result.ok:
                if result.error in GONE:
                    async with self.db.sessions() as s, s.begin():
                        await outbox.repost(s, row.id, self.clock())
                    return
                await self._retry(row, MessageState.TO_UPDATE, result.error, report, result)
                return
            report.updated += 1
        threaded, more_at = row.threaded_attempt_id, None
        if row.subject_type == POSTING and row.ts:
            async with self.db.sessions() as s:
                new = await attempts_after(s, int(row.subject_id), threaded)
            ready = self._next_post.get(row.channel)
            if new and ready and ready > self.clock():
                more_at = ready
            elif new:
                outcome = await self._thread(row, new, report)
                if outcome is None:
                    return
                threaded = outcome
        async with self.db.sessions() as s, s.begin():
            await outbox.settle(
                s,
                row.id,
                row.revision,
                self.clock(),
                rendered_hash=r.body.hash,
                subject_status=r.status,
                more_at=more_at,
            )

    async def _thread(self, row: SlackMessage, new: list, report: FlushReport) -> int | None:
        """Copy new attempts into the thread; at most once (the marker moves first)."""
        old, upto = row.threaded_attempt_id, new[-1][0]
        async with self.db.sessions() as s, s.begin():
            if not await outbox.set_threaded(s, row.id, old, upto):
                return None
        self._next_post[row.channel] = self.clock() + timedelta(seconds=self.settings.post_interval)
        body = thread_reply([entry for _, entry in new])
        result = await self._call(
            self.client.chat_postMessage(
                channel=row.channel,
                thread_ts=row.ts,
                text=body.text,
                blocks=body.blocks,
                unfurl_links=False,
                unfurl_media=False,
            ),
            "chat.postMessage",
            "chat.postMessage (thread)",
        )
        if result.ok or result.delivery is Delivery.UNKNOWN:
            report.threaded += int(result.ok)
            return upto
        async with self.db.sessions() as s, s.begin():
            await outbox.set_threaded(s, row.id, upto, old)
        await self._retry(row, MessageState.TO_UPDATE, result.error, report, result)
        return None

    # -- posts with an unknown outcome ------------------------------------------------------
    async def _resolve(self, row: SlackMessage, report: FlushReport) -> None:
        outcome = await self.resolver.resolve(row, self._backoff(row))
        report.posted += outcome is Resolution.ADOPTED
        report.failed += outcome is Resolution.WAITING

    def _backoff(self, row: SlackMessage) -> timedelta:
        """The wait before the next try of a row that has failed ``attempts`` times."""
        attempts = row.attempts + 1
        return timedelta(
            seconds=min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempts - 1))
        )

    # -- waiting ---------------------------------------------------------------------------
    async def _defer(self, row: SlackMessage, until: datetime, report: FlushReport) -> None:
        async with self.db.sessions() as s, s.begin():
            await outbox.defer(s, row, until, self.clock())
        report.deferred += 1

    async def _retry(
        self, row: SlackMessage, state: str, error: str, report: FlushReport, result: CallResult | None = None
    ) -> None:
        now = self.clock()
        delay = self._backoff(row).total_seconds()
        if result is not None and result.delivery is Delivery.RATE_LIMITED:
            delay = result.retry_after or 1.0
            self._paused[row.channel] = now + timedelta(seconds=delay)
        elif result is not None and result.delivery is Delivery.UNREACHABLE:
            self._all_paused = now + timedelta(seconds=delay)  # Slack is down for every channel
        at = now + timedelta(seconds=delay)
        async with self.db.sessions() as s, s.begin():
            await outbox.retry_later(s, row.id, state, at, error, now)
        report.failed += 1
        log.info("outbox row %s not sent (%s); next try in %.0fs", row.id, error, delay)
