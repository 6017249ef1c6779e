"""The outbox's sending loop: Slack messages rebuilt from the database and sent when due.

- The engine's change feed only says *which* subjects changed; the notifier
  records that in ``slack_messages`` (``storage/queries/outbox.py``) and renders from the
  database when it sends, so a message always shows the state of now.
- A posting that needs a person gets a message after a short grouping window;
  if by then more postings fail with the same error-group fingerprint, one
  group message ("37 bills: Account 2800 does not exist.") replaces them.
- ``chat.postMessage`` goes out at most once per second per channel; 429
  pauses the channel for ``Retry-After``; a Slack outage leaves rows waiting
  with backoff (``bot/outbox/pace.py``). A post whose outcome is unknown (a 500,
  a lost answer) is looked up in the channel's history by its message metadata
  before it is sent again (``bot/outbox/unconfirmed_posts.py``): found -> adopted, else posted.
- Posting or updating one message is ``bot/outbox/message_sender.py``; copying a
  posting's new attempts into its thread is ``bot/outbox/thread_replies.py``.
- Time is the engine's clock, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.outbox.coverage import GROUP, POSTING, Coverage
from bot.outbox.delivery import CallResult, ReportedCalls
from bot.outbox.message_sender import MessageSender
from bot.outbox.pace import FlushReport, OutboxSettings, Pace
from bot.outbox.rendering import render
from bot.outbox.unconfirmed_posts import PostResolver, Resolution
from storage.db import Session
from storage.models import SlackMessage
from storage.queries import outbox
from storage.queries.groups import group_muted_until, posting_group_muted_until
from storage.states import MessageState
from sync.changes import Change
from sync.engine import Engine

log = logging.getLogger(__name__)


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
        self._expiry_check: datetime | None = None
        self.pace = Pace(self.db, self.clock, self.settings)
        self.calls = ReportedCalls()
        #: told after every Web API call (``bot/runtime.py`` feeds the metrics from here)
        self.call_listeners = self.calls.listeners
        self.sender = MessageSender(self.db, client, self.pace, self.calls)
        self.resolver = PostResolver(
            self.db, self.clock, self._read_history, timedelta(seconds=self.settings.claim_seconds)
        )
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.coverage = Coverage(self.channel_of, self.settings.group_window)
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
                if self.pace.slack_paused(now):
                    break
                async with self.db.sessions() as s:
                    rows = list(await outbox.due_rows(s, now, self.settings.batch))
                    s.expunge_all()
                if not rows:
                    break
                for row in rows:
                    if self.pace.slack_paused(self.clock()):
                        break
                    try:
                        await self._step(row, report)
                    except Exception:
                        # A bug or the database: try again later. Guarded by the row's state,
                        # so a post already claimed stays claimed (never sent twice).
                        log.exception("sending outbox row %s failed", row.id)
                        await self.pace.defer(
                            row, self.clock() + timedelta(seconds=self.settings.backoff_max / 10), report
                        )
            async with self.db.sessions() as s:
                due = await outbox.next_due(s)
            all_paused = self.pace.all_paused
            if due is not None and all_paused and all_paused > due:
                due = all_paused  # nothing goes out before Slack is tried again
            report.next_due = due
            return report

    async def _step(self, row: SlackMessage, report: FlushReport) -> None:
        now = self.clock()
        paused = self.pace.paused.get(row.channel)
        if paused and paused > now:
            await self.pace.defer(row, paused, report)
            return
        if row.state == MessageState.UNCONFIRMED:
            await self._resolve(row, report)
            return
        if row.state == MessageState.TO_POST:
            ready = self.pace.post_ready_at(row.channel, now)
            if ready:
                await self.pace.defer(row, ready, report)
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
            await self.sender.post(row, rendered, report)
        else:
            await self.sender.update(row, rendered, report)

    async def _muted_until(self, s: Session, row: SlackMessage, now: datetime) -> datetime | None:
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

    def _read_history(self, **args: object) -> Awaitable[CallResult]:
        return self.calls(self.client.conversations_history(**args), "conversations.history")  # type: ignore[arg-type]

    # -- posts with an unknown outcome ------------------------------------------------------
    async def _resolve(self, row: SlackMessage, report: FlushReport) -> None:
        outcome = await self.resolver.resolve(row, self.pace.backoff(row))
        report.posted += outcome is Resolution.ADOPTED
        report.failed += outcome is Resolution.WAITING
