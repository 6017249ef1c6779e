"""An outbox row's message, rebuilt from the database at send time (``None``: none needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.block_kit import SlackBody
from bot.coverage import DIGEST, GROUP, NOTICE, OUTAGE
from bot.digest import load_job_message
from bot.ops.messages import outage_message
from bot.outage import load_outage_notice
from bot.postings.facts import needs_person
from bot.postings.messages import group_message, posting_message
from bot.postings.notices import load_group_notice, load_posting_notice
from storage.models import SlackMessage
from storage.queries import outbox
from storage.queries.groups import failing_in_group
from storage.queries.reads import last_attempt_id
from storage.states import MessageState, PostingState


@dataclass(frozen=True)
class Rendered:
    """What a row's message says now, and the status it shows."""

    body: SlackBody
    status: str
    last_attempt: int | None = None


async def render(s: AsyncSession, row: SlackMessage, now: datetime) -> Rendered | None:
    """Rebuild the message from the database; ``None``: no message is needed (any more)."""
    subject = int(row.subject_id)
    never_sent = row.state == MessageState.TO_POST and row.subject_status is None
    if row.subject_type == OUTAGE:
        o = await load_outage_notice(s, subject)
        if o is None or (never_sent and o.recovered_at is not None):
            return None  # over before it reached the channel: nothing to tell
        return Rendered(outage_message(o), o.status)
    if row.subject_type in (DIGEST, NOTICE):
        body = await load_job_message(s, subject)
        return Rendered(body, "posted") if body is not None else None
    if row.subject_type == GROUP:
        g = await load_group_notice(s, subject)
        if g is None or (row.state == MessageState.TO_POST and row.subject_status is None and not g.failing):
            return None
        return Rendered(group_message(g), g.status)
    n = await load_posting_notice(s, subject)
    if n is None:
        return None
    p = n.posting
    # A row that never reached the channel tells only what needs a person; one that
    # may be there already (``subject_status`` set: unconfirmed, deleted) follows up.
    if row.state == MessageState.TO_POST and row.subject_status is None:
        if not needs_person(p.state, p.last_error):
            return None  # fixed within the grouping window: nothing to tell
        gid = p.error_group_id if p.state == PostingState.FAILED else None
        if gid is not None and (
            await outbox.rows_for(s, GROUP, [gid]) or await failing_in_group(s, gid) >= 2
        ):
            await outbox.ensure_row(s, GROUP, gid, row.channel, now, now)
            return None  # superseded by the group's message
    return Rendered(posting_message(n), n.status, await last_attempt_id(s, subject))
