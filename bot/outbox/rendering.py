"""An outbox row's message, rebuilt from the database at send time (``None``: none needed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.block_kit import SlackBody
from bot.bulk.progress import load_bulk_progress, progress_message
from bot.ops.digest import load_job_message
from bot.ops.messages import outage_message
from bot.ops.outage import load_outage_notice
from bot.ops.team import load_team_change
from bot.outbox.coverage import BULK, DIGEST, GROUP, NOTICE, OUTAGE, TEAM
from bot.postings.messages import group_message, posting_message, shown_in_group
from bot.postings.notices import load_group_notice, load_posting_notice
from storage.db import Session
from storage.models import SlackMessage
from storage.queries import outbox
from storage.queries.reads import last_attempt_id
from storage.states import MessageState
from sync.coverage import needs_own_message, needs_person, showing_group


@dataclass(frozen=True)
class Rendered:
    """What a row's message says now, and the status it shows."""

    body: SlackBody
    status: str
    last_attempt: int | None = None


async def render(s: Session, row: SlackMessage, now: datetime) -> Rendered | None:
    """Rebuild the message from the database; ``None``: no message is needed (any more)."""
    subject = int(row.subject_id)
    never_sent = row.state == MessageState.TO_POST and row.subject_status is None
    if row.subject_type in (OUTAGE, TEAM, BULK, DIGEST, NOTICE):
        return await _operations(s, row.subject_type, subject, never_sent)
    if row.subject_type == GROUP:
        g = await load_group_notice(s, subject)
        # Posted anew (never shown, or gone from the channel) only while it has failures: a
        # group whose postings all left it has nothing to say ("Resolved (0 documents)").
        if g is None or (
            row.state == MessageState.TO_POST
            and not g.failing
            and (row.subject_status is None or not g.total)
        ):
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
        gid = showing_group(p.state, p.error_group_id)
        if gid is not None and not await needs_own_message(
            s,
            p.state,
            p.last_error,
            gid,
            group_has_message=bool(await outbox.rows_for(s, GROUP, [gid])),
        ):
            await outbox.ensure_row(s, GROUP, gid, row.channel, now, now)
            return None  # superseded by the group's message
    elif await _group_shows(s, row, p.state, p.error_group_id):
        # in the channel already, but the group's message shows it now: one place to act
        return Rendered(shown_in_group(n), n.status, await last_attempt_id(s, subject))
    return Rendered(posting_message(n), n.status, await last_attempt_id(s, subject))


async def _operations(s: Session, subject_type: str, subject: int, never_sent: bool) -> Rendered | None:
    """The messages that are not about one posting: outage, team change, bulk run, job runs."""
    if subject_type == OUTAGE:
        o = await load_outage_notice(s, subject)
        if o is None or (never_sent and o.recovered_at is not None):
            return None  # over before it reached the channel: nothing to tell
        return Rendered(outage_message(o), o.status)
    if subject_type == TEAM:
        team = await load_team_change(s, subject)
        return Rendered(team, "posted") if team is not None else None
    if subject_type == BULK:
        b = await load_bulk_progress(s, subject)
        return Rendered(progress_message(b), b.status) if b is not None else None
    body = await load_job_message(s, subject)
    return Rendered(body, "posted") if body is not None else None


async def _group_shows(s: Session, row: SlackMessage, state: str, error_group_id: int | None) -> bool:
    """The posting's error group has a message in this row's channel that shows it."""
    gid = showing_group(state, error_group_id)
    if gid is None:
        return False
    return any(g.channel == row.channel for g in (await outbox.rows_for(s, GROUP, [gid])).get(gid, []))
