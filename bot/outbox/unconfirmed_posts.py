"""Posts with an unknown outcome, resolved by reading the channel instead of guessing.

``chat.postMessage`` has no idempotency key, so every post the outbox makes
carries its row in Slack's message ``metadata``::

    {"event_type": "ledgerops_outbox",
     "event_payload": {"outbox_row": 12, "queued": 1767225600123456, "subject": "posting:7",
                       "rendered": "<sha256 of text+blocks>", "status": "failed", "attempt": 31}}

``outbox_row`` and ``queued`` (when the row's current message was queued, in
microseconds) name one message: a reopened row gets a new ``queued``, so its
new message is never mistaken for the old one. After a 500, a timeout or a
sender that died mid-post, ``conversations.history`` (``include_all_metadata``,
``oldest`` = when the row was queued, less a margin for clock skew) tells
whether the post is in the channel: found -> its ``ts`` is adopted, not found
-> it is posted again (the one gap: a post Slack stored but does not list yet;
then the message appears twice, which beats a lost alert).

One history read per channel answers every unconfirmed row of that channel.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.outbox.delivery import CallResult, Delivery
from storage.db import Database
from storage.models import SlackMessage
from storage.queries import outbox
from storage.states import MessageState

log = logging.getLogger(__name__)

EVENT_TYPE = "ledgerops_outbox"
#: our clock and Slack's may disagree a little: read this much further back
CLOCK_SKEW = timedelta(seconds=60)
#: a page of history (Slack may answer with fewer; the cursor pages on)
PAGE_SIZE = 200
#: pages read before giving up on finding a post (then it is posted again: a rare duplicate)
MAX_PAGES = 20


def queued_stamp(queued_at: datetime) -> int:
    """The row's ``created_at`` as whole microseconds: part of the message's identity."""
    return round(queued_at.timestamp() * 1_000_000)


def post_metadata(
    row_id: int, queued_at: datetime, subject: str, rendered: str, status: str, attempt: int | None
) -> dict[str, Any]:
    """The ``metadata`` argument of chat.postMessage for one outbox post."""
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {
            "outbox_row": row_id,
            "queued": queued_stamp(queued_at),
            "subject": subject,
            "rendered": rendered,
            "status": status,
            "attempt": attempt or 0,
        },
    }


@dataclass(frozen=True)
class FoundPost:
    """An outbox post seen in the channel."""

    ts: str
    rendered: str
    status: str
    attempt: int | None


@dataclass
class ChannelPosts:
    """The outbox posts of one channel since ``oldest``, read at ``read_at`` (our clock)."""

    oldest: datetime
    read_at: datetime
    posts: dict[tuple[int, int], FoundPost] = field(default_factory=dict)

    def find(self, row_id: int, queued_at: datetime) -> FoundPost | None:
        return self.posts.get((row_id, queued_stamp(queued_at)))

    def covers(self, queued_at: datetime, unconfirmed_since: datetime) -> bool:
        """Read late enough, and far enough back, to answer for this row."""
        return self.oldest <= queued_at and self.read_at > unconfirmed_since


HistoryCall = Callable[..., Awaitable[CallResult]]


async def read_channel(
    history: HistoryCall, channel: str, oldest: datetime, now: datetime
) -> ChannelPosts | CallResult:
    """Every outbox post in ``channel`` since ``oldest``; a failed call is returned as it came."""
    found = ChannelPosts(oldest=oldest, read_at=now)
    since = f"{(oldest - CLOCK_SKEW).timestamp():.6f}"
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        result = await history(
            channel=channel, oldest=since, include_all_metadata=True, limit=PAGE_SIZE, cursor=cursor
        )
        if result.delivery is not Delivery.OK:
            return result
        for message in result.data.get("messages") or []:
            _remember(found, message)
        cursor = (result.data.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return found


def _remember(found: ChannelPosts, message: dict[str, Any]) -> None:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    if meta.get("event_type") != EVENT_TYPE or not isinstance(payload, dict):
        return
    row, queued = payload.get("outbox_row"), payload.get("queued")
    if not isinstance(row, int) or not isinstance(queued, int) or not message.get("ts"):
        return
    attempt = payload.get("attempt")
    found.posts.setdefault(
        (row, queued),
        FoundPost(
            ts=str(message["ts"]),
            rendered=str(payload.get("rendered") or ""),
            status=str(payload.get("status") or ""),
            attempt=attempt if isinstance(attempt, int) and attempt > 0 else None,
        ),
    )


class Resolution(StrEnum):
    ADOPTED = "adopted"  # in the channel: the row now updates that message
    POST_AGAIN = "post_again"  # not in the channel: due to be posted
    WAITING = "waiting"  # Slack could not say: asked again later
    TAKEN = "taken"  # another sender has the row


class PostResolver:
    """Settles unconfirmed rows from the channel's history, one read per channel and pass."""

    def __init__(self, db: Database, clock: Callable[[], datetime], history: HistoryCall, claim: timedelta):
        self.db, self.clock, self.history, self.claim = db, clock, history, claim
        self._seen: dict[str, ChannelPosts] = {}
        #: a channel whose history failed in this pass is not asked again in it
        self._failed: dict[str, CallResult] = {}

    def new_pass(self) -> None:
        """Forget what was read: posts may have landed since."""
        self._seen, self._failed = {}, {}

    async def resolve(self, row: SlackMessage, backoff: timedelta) -> Resolution:
        """Adopt the post, or make it due again; if history fails, wait ``backoff`` (or
        ``Retry-After``): the row is never dropped."""
        now = self.clock()
        async with self.db.sessions() as s, s.begin():
            if not await outbox.claim(s, row, now, self.claim):
                return Resolution.TAKEN
        seen = self._seen.get(row.channel)
        if seen is None or not seen.covers(row.created_at, row.updated_at):
            read = self._failed.get(row.channel) or await self._read(row, now)
            if isinstance(read, CallResult):
                self._failed[row.channel] = read
                wait = read.retry_after if read.delivery is Delivery.RATE_LIMITED else None
                at = now + (timedelta(seconds=wait) if wait else backoff)
                async with self.db.sessions() as s, s.begin():
                    await outbox.retry_later(s, row.id, MessageState.UNCONFIRMED, at, read.error, now)
                log.info("history of %s not read (%s); outbox row %s waits", row.channel, read.error, row.id)
                return Resolution.WAITING
            seen = self._seen[row.channel] = read
        found = seen.find(row.id, row.created_at)
        async with self.db.sessions() as s, s.begin():
            if found is None:
                await outbox.not_posted(s, row.id, now)
                return Resolution.POST_AGAIN
            await outbox.adopt(
                s,
                row.id,
                now,
                ts=found.ts,
                rendered_hash=found.rendered,
                subject_status=found.status,
                threaded_attempt_id=found.attempt,
            )
        return Resolution.ADOPTED

    async def _read(self, row: SlackMessage, now: datetime) -> ChannelPosts | CallResult:
        async with self.db.sessions() as s:
            oldest = await outbox.unconfirmed_since(s, row.channel) or row.created_at
        return await read_channel(self.history, row.channel, min(oldest, row.created_at), now)
