"""Jobs that must happen once across replicas and tell the channel: daily digest, quota reset.

The quota reset's rule is ``sync/quota.py``; this module queues its notice.

Each claims its ``job_runs`` row first (unique per job and day, or month), in the
same transaction that computes what it found and queues its Slack message; a
replica that loses the claim does nothing. The row keeps what was found
(``detail``), so the message is rebuilt from it however often it is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.block_kit import SlackBody
from bot.ops.facts import Digest, IntegrationDay, OpenGroup, QuotaNotice
from bot.ops.messages import DIGEST_GROUPS, digest_message, quota_message
from bot.outbox.coverage import DIGEST, NOTICE
from bot.postings.facts import plural
from storage.db import Session
from storage.models import JobRun
from storage.queries import figures, outbox
from storage.queries.jobs import claim_job_run
from storage.states import PostingState
from sync.quota import QUOTA_JOB, reset_monthly_quota

DIGEST_JOB = "digest"
NOT_YET_SENT = (PostingState.WAITING, PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING)


def local_day(now: datetime) -> str:
    """The server-local date of ``now`` (the digest runs at a server-local time)."""
    return now.astimezone().date().isoformat()


async def post_digest(s: Session, now: datetime, holder: str, channel: str | None) -> Digest | None:
    """Claim today's digest and queue it; ``None`` when another run (or replica) has it."""
    day = local_day(now)
    run_id = await s.run_sync(lambda ss: claim_job_run(ss, DIGEST_JOB, day, holder, now))
    if run_id is None:
        return None
    previous = await figures.previous_job_run_at(s, DIGEST_JOB, run_id)
    digest = await build_digest(s, day, previous or now - timedelta(hours=24), now)
    run = await s.get(JobRun, run_id)
    assert run is not None
    run.detail = digest.to_detail()
    if channel is not None:
        await outbox.ensure_row(s, DIGEST, run_id, channel, now, now)
    return digest


async def build_digest(s: Session, day: str, since: datetime, now: datetime) -> Digest:
    """Synced since ``since``; failed and waiting now; open error groups; paused integrations."""
    synced = await figures.postings_per_integration(s, [PostingState.SYNCED], updated_after=since)
    failed = await figures.postings_per_integration(s, [PostingState.FAILED])
    waiting = await figures.postings_per_integration(s, NOT_YET_SENT)
    lines = tuple(
        IntegrationDay(
            name=i.name,
            kind=i.kind,
            paused=bool(i.paused),
            synced=int(synced.get(i.id, 0)),
            failed=int(failed.get(i.id, 0)),
            waiting=int(waiting.get(i.id, 0)),
        )
        for i in await figures.integrations_by_name(s)
    )
    open_groups = await figures.open_groups_by_failing(s)
    groups = []
    for gid, title, integration, n in open_groups[:DIGEST_GROUPS]:
        kinds = await figures.document_kinds_failing_in_group(s, gid) or frozenset({"document"})
        groups.append(
            OpenGroup(
                group_id=gid, integration=integration, title=title, failing=int(n), noun=plural(kinds, int(n))
            )
        )
    totals = {
        "synced": sum(i.synced for i in lines),
        "failed": sum(i.failed for i in lines),
        "waiting": sum(i.waiting for i in lines),
    }
    return Digest(
        day=day,
        since=since,
        until=now,
        integrations=lines,
        groups=tuple(groups),
        more_groups=max(0, len(open_groups) - DIGEST_GROUPS),
        totals=totals,
    )


async def reset_quota(s: Session, now: datetime, holder: str, channel: str | None) -> int | None:
    """Once a month: resume quota-blocked postings (``sync/quota.py``) and tell the channel how many.

    ``None`` when this month's reset already ran (here or on another replica).
    """
    reset = await reset_monthly_quota(s, now, holder)
    if reset is None:
        return None
    if reset.resumed and channel is not None:
        await outbox.ensure_row(s, NOTICE, reset.run_id, channel, now, now)
    return reset.resumed


async def load_job_message(s: Session, run_id: int) -> SlackBody | None:
    """The message of a job run (digest or quota reset), rebuilt from what it stored."""
    run = await s.get(JobRun, run_id)
    if run is None or not run.detail:
        return None
    if run.job == DIGEST_JOB:
        return digest_message(Digest.from_detail(run.detail))
    if run.job == QUOTA_JOB:
        return quota_message(QuotaNotice(month=run.detail["month"], resumed=int(run.detail["resumed"])))
    return None
