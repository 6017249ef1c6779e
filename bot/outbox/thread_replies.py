"""A posting's new attempts, copied into its message's thread (each at most once).

The marker ``threaded_attempt_id`` moves before the reply is sent, so a crash
between the two never posts the same attempts twice; a reply Slack refused
moves the marker back and is tried again.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.web.async_client import AsyncWebClient

from bot.outbox.coverage import POSTING
from bot.outbox.delivery import Delivery, ReportedCalls
from bot.outbox.pace import FlushReport, Pace
from bot.postings.log_blocks import thread_reply
from bot.postings.notices import attempts_after
from storage.db import Database
from storage.models import SlackMessage
from storage.queries import outbox
from storage.states import MessageState


class ThreadReplies:
    """Keeps a posting message's thread in step with the posting's attempts."""

    def __init__(self, db: Database, client: AsyncWebClient, pace: Pace, calls: ReportedCalls):
        self.db, self.client, self.pace, self.calls = db, client, pace, calls

    async def follow(self, row: SlackMessage, report: FlushReport) -> tuple[bool, datetime | None]:
        """Thread what is new: whether the message may be settled, and when to look again.

        ``False``: the reply did not go out (the row waits for a retry, or another
        sender moved the marker first); the message is not settled.
        """
        if row.subject_type != POSTING or not row.ts:
            return True, None
        async with self.db.sessions() as s:
            new = await attempts_after(s, int(row.subject_id), row.threaded_attempt_id)
        if not new:
            return True, None
        ready = self.pace.post_ready_at(row.channel, self.pace.clock())
        if ready:
            return True, ready  # the channel's turn comes later: the thread follows then
        return await self._reply(row, new, report), None

    async def _reply(self, row: SlackMessage, new: list, report: FlushReport) -> bool:
        """Copy new attempts into the thread; at most once (the marker moves first)."""
        old, upto = row.threaded_attempt_id, new[-1][0]
        async with self.db.sessions() as s, s.begin():
            if not await outbox.set_threaded(s, row.id, old, upto):
                return False
        self.pace.posted(row.channel)
        body = thread_reply([entry for _, entry in new])
        result = await self.calls(
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
            return True
        async with self.db.sessions() as s, s.begin():
            await outbox.set_threaded(s, row.id, upto, old)
        await self.pace.retry(row, MessageState.TO_UPDATE, result.error, report, result)
        return False
