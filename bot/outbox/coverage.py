"""Which Slack message shows which posting: one per posting, or one per error group.

The rule is ``sync/coverage.py``: a posting that needs a person (failed, or booked
with a refused change) is shown by a message. If its error group already has a
message, or two or more postings of the group fail, the group's message shows it
("37 bills: Account 2800 does not exist."), not a message of its own. A new
row waits ``group_window`` seconds before it is posted, so a burst of the same
failure ends as one group message; the sender checks again just before posting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from bot.postings.facts import SETTLED
from storage.db import Session
from storage.models import SlackMessage
from storage.queries import bulk_runs, outbox, reads
from storage.queries.groups import failing_in_group, failing_postings_of_group
from storage.states import MessageState, PostingState
from sync.changes import Change
from sync.coverage import GROUP_FROM, needs_own_message, needs_person, showing_group

log = logging.getLogger(__name__)

POSTING, GROUP = "posting", "error_group"
#: operations messages (bot/ops/outage.py, bot/ops/digest.py): an integration's outage, a job run
OUTAGE, DIGEST, NOTICE = "outage", "digest", "notice"
#: a team change announced in the channel (pause, resume, map): subject is its ``activity`` row
TEAM = "team_change"
#: a bulk resync's progress (``bot/bulk/progress.py``): rebuilt as its postings' outcomes arrive
BULK = "bulk"
#: bulk runs whose message still follows their postings
BULK_FOLLOWS = timedelta(days=1)


class Coverage:
    """Keeps ``slack_messages`` rows in step with what needs showing."""

    def __init__(self, channel_of: Callable[[int], str | None], group_window: float):
        self.channel_of = channel_of
        self.window = timedelta(seconds=group_window)

    async def record(self, s: Session, changes: list[Change], now: datetime) -> None:
        """Subjects changed: their messages become due; new failures get covered."""
        posting_ids = {c.posting_id for c in changes}
        # a group the posting left (it fails another way now) shows one fewer
        group_ids = {g for c in changes for g in (c.error_group_id, c.left_group_id) if g}
        for kind, ids in ((POSTING, posting_ids), (GROUP, group_ids)):
            existing = await outbox.subjects_with_rows(s, kind, ids)  # a read: usually none
            if existing:
                await outbox.mark_changed(s, kind, existing, now)
        runs = await bulk_runs.runs_of_postings(s, posting_ids, now - BULK_FOLLOWS)
        if runs:
            await outbox.mark_changed(s, BULK, runs, now)
        # "" is a change announced without its state (a sweep gave postings up): look
        attention = {
            c.posting_id for c in changes if c.state in (PostingState.FAILED, PostingState.BOOKED, "")
        }
        if attention:
            await self.cover(s, attention, now)

    async def cover(self, s: Session, posting_ids: Iterable[int], now: datetime) -> None:
        """Make sure every posting that needs a person is shown by some message."""
        ids = sorted(set(posting_ids))
        due = now + self.window
        for start in range(0, len(ids), outbox.CHUNK):
            chunk = ids[start : start + outbox.CHUNK]
            postings = await reads.postings_to_show(s, chunk)
            own = await outbox.rows_for(s, POSTING, chunk)
            groups = await outbox.rows_for(s, GROUP, {p.error_group_id for p in postings if p.error_group_id})
            grouped: set[int] = set()
            for p in postings:
                channel = self.channel_of(p.integration_id)
                if channel is not None and needs_person(p.state, p.last_error):
                    await self._show(s, p, channel, own.get(p.id, []), groups, grouped, due, now)

    async def _show(
        self,
        s: Session,
        p: Any,
        channel: str,
        own: list[SlackMessage],
        groups: dict[int, list[SlackMessage]],
        grouped: set[int],
        due: datetime,
        now: datetime,
    ) -> None:
        """Cover one posting in ``channel``: by its own message or its group's (``sync/coverage.py``)."""
        mine = next((r for r in own if r.channel == channel), None)
        gid = showing_group(p.state, p.error_group_id)
        grow = (
            next((r for r in groups.get(gid, []) if r.channel == channel), None) if gid is not None else None
        )
        group_has = gid is not None and (grow is not None or gid in grouped)
        if gid is not None and grow is not None and gid not in grouped:
            await reopen_if_settled(s, grow, due, now)
            grouped.add(gid)
        if mine is not None and mine.ts is not None:
            await reopen_if_settled(s, mine, due, now)  # its own message is in the channel: it stays
            if not group_has and gid is not None and await failing_in_group(s, gid) >= GROUP_FROM:
                # ...but the group's message shows it, and its own points there
                await outbox.ensure_row(s, GROUP, gid, channel, now, due)
                grouped.add(gid)
                await outbox.mark_changed(s, POSTING, await failing_postings_of_group(s, gid), now)
            return
        shown_alone = await needs_own_message(
            s,
            p.state,
            p.last_error,
            p.error_group_id,
            group_has_message=group_has,
        )
        if shown_alone is None:
            return
        if not shown_alone and not group_has and gid is not None:
            await outbox.ensure_row(s, GROUP, gid, channel, now, due)  # from now on the group shows it
            grouped.add(gid)
            # a failure shown by the group keeps no message of its own: those posted before
            # become a pointer to the group's (``bot/outbox/rendering.py``)
            await outbox.mark_changed(s, POSTING, await failing_postings_of_group(s, gid), now)
        elif mine is not None:
            await reopen_if_settled(s, mine, due, now)
        elif shown_alone:
            await outbox.ensure_row(s, POSTING, p.id, channel, now, due)

    async def catch_up(self, s: Session, now: datetime) -> None:
        """Start-up: posts lost with a dead process, failures without a message, stale ones."""
        lost = await outbox.expire_sending(s, now)
        if lost:
            log.warning("%d Slack posts have an unknown outcome; not repeated", lost)
        attention = await reads.postings_needing_a_person(s)
        await self.cover(s, attention, now)
        stale = await outbox.posted_messages_not_showing(s, [str(x) for x in SETTLED])
        for kind in (POSTING, GROUP, OUTAGE):
            await outbox.mark_changed(s, kind, [int(i) for t, i in stale if t == kind], now)


async def reopen_if_settled(s: Session, row: SlackMessage, due: datetime, now: datetime) -> None:
    """Its message says "synced" / "resolved" far up the channel: a new incident, a new one."""
    if row.subject_status in SETTLED and row.state in (MessageState.POSTED, MessageState.TO_UPDATE):
        await outbox.reopen(s, row.id, due, now)
