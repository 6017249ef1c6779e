"""Posting one channel message, or updating it in place, from its rendered body.

A post carries message metadata (``bot/outbox/unconfirmed_posts.py``), so a post whose
outcome is unknown can be found in the channel before it is sent again. An
update that can never land (the message is gone) posts the message anew.
"""

from __future__ import annotations

import logging

from slack_sdk.web.async_client import AsyncWebClient

from bot.outbox.delivery import Delivery, ReportedCalls
from bot.outbox.pace import FlushReport, Pace
from bot.outbox.rendering import Rendered
from bot.outbox.thread_replies import ThreadReplies
from bot.outbox.unconfirmed_posts import post_metadata
from storage.db import Database
from storage.models import SlackMessage
from storage.queries import outbox
from storage.states import MessageState

log = logging.getLogger(__name__)

#: errors after which an update can never land: post the message anew
GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


class MessageSender:
    """Sends one claimed outbox row to Slack and records what came of it."""

    def __init__(self, db: Database, client: AsyncWebClient, pace: Pace, calls: ReportedCalls):
        self.db, self.client, self.pace, self.calls = db, client, pace, calls
        self.clock = pace.clock
        self.threads = ThreadReplies(db, client, pace, calls)

    async def post(self, row: SlackMessage, r: Rendered, report: FlushReport) -> None:
        """Post the row's message; an unknown outcome is looked up before it is sent again."""
        self.pace.posted(row.channel)
        result = await self.calls(
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
                await outbox.unconfirmed(s, row.id, result.error, now, r.status, now + self.pace.backoff(row))
                report.failed += 1
                return
        await self.pace.retry(row, MessageState.TO_POST, result.error, report, result)

    async def update(self, row: SlackMessage, r: Rendered, report: FlushReport) -> None:
        """Update the message if its body changed, then thread the posting's new attempts."""
        if r.body.hash != row.rendered_hash:
            result = await self.calls(
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
                await self.pace.retry(row, MessageState.TO_UPDATE, result.error, report, result)
                return
            report.updated += 1
        may_settle, more_at = await self.threads.follow(row, report)
        if not may_settle:
            return
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
