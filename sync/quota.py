"""The monthly booking quota's reset: once a month, postings it held back go back to the queue.

The run claims its ``job_runs`` row for the month first (unique per job and month),
so across replicas exactly one resets; the row keeps how many resumed, for the
channel's notice (``bot/ops/digest.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Session
from storage.models import JobRun
from storage.queries.jobs import claim_job_run, release_quota_blocked

QUOTA_JOB = "quota_reset"


@dataclass(frozen=True)
class QuotaReset:
    """What this month's reset did: its job run and how many postings resumed."""

    run_id: int
    month: str
    resumed: int


async def reset_monthly_quota(s: Session, now: datetime, holder: str) -> QuotaReset | None:
    """Claim this month's reset and resume quota-blocked postings; ``None``: it already ran."""
    month = now.strftime("%Y-%m")
    run_id = await s.run_sync(lambda ss: claim_job_run(ss, QUOTA_JOB, month, holder, now))
    if run_id is None:
        return None
    released = await s.run_sync(lambda ss: release_quota_blocked(ss, now))
    run = await s.get(JobRun, run_id)
    assert run is not None
    run.detail = {"month": month, "resumed": released}
    return QuotaReset(run_id, month, released)
