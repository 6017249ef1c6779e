"""How fast and how often the outbox sends: settings, per-channel pauses, backoff.

- ``chat.postMessage`` goes out at most once per ``post_interval`` per channel.
- A 429 pauses that channel for ``Retry-After``; Slack out of reach pauses every
  channel; any other failure waits an exponential backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.outbox.delivery import CallResult, Delivery
from storage.db import Database
from storage.models import SlackMessage
from storage.queries import outbox

log = logging.getLogger(__name__)


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


class Pace:
    """When each channel may be sent to next, and what a failure costs in waiting."""

    def __init__(self, db: Database, clock: Callable[[], datetime], settings: OutboxSettings):
        self.db = db
        self.clock = clock
        self.settings = settings
        self.next_post: dict[str, datetime] = {}
        self.paused: dict[str, datetime] = {}
        #: Slack out of reach: no channel is tried before this
        self.all_paused: datetime | None = None

    def slack_paused(self, now: datetime) -> bool:
        """Whether Slack was out of reach and is not to be tried again yet."""
        return self.all_paused is not None and self.all_paused > now

    def posted(self, channel: str) -> None:
        """A ``chat.postMessage`` goes out now: the channel's next one waits its turn."""
        self.next_post[channel] = self.clock() + timedelta(seconds=self.settings.post_interval)

    def post_ready_at(self, channel: str, now: datetime) -> datetime | None:
        """When the channel's next post may go out, if that is later than ``now``."""
        ready = self.next_post.get(channel)
        return ready if ready and ready > now else None

    def backoff(self, row: SlackMessage) -> timedelta:
        """The wait before the next try of a row that has failed ``attempts`` times."""
        attempts = row.attempts + 1
        return timedelta(
            seconds=min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempts - 1))
        )

    async def defer(self, row: SlackMessage, until: datetime, report: FlushReport) -> None:
        """Leave the row for later without counting a failure."""
        async with self.db.sessions() as s, s.begin():
            await outbox.defer(s, row, until, self.clock())
        report.deferred += 1

    async def retry(
        self, row: SlackMessage, state: str, error: str, report: FlushReport, result: CallResult | None = None
    ) -> None:
        """A failed send: the row waits (backoff, ``Retry-After``, or Slack's outage)."""
        now = self.clock()
        delay = self.backoff(row).total_seconds()
        if result is not None and result.delivery is Delivery.RATE_LIMITED:
            delay = result.retry_after or 1.0
            self.paused[row.channel] = now + timedelta(seconds=delay)
        elif result is not None and result.delivery is Delivery.UNREACHABLE:
            self.all_paused = now + timedelta(seconds=delay)  # Slack is down for every channel
        at = now + timedelta(seconds=delay)
        async with self.db.sessions() as s, s.begin():
            await outbox.retry_later(s, row.id, state, at, error, now)
        report.failed += 1
        log.info("outbox row %s not sent (%s); next try in %.0fs", row.id, error, delay)
