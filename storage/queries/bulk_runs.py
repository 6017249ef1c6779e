"""Bulk resync runs: a ``job_runs`` row (job ``bulk_resync``) and the postings it queued.

The run's Slack message is rebuilt from these: how many were queued, and what
became of them since (sent, still waiting, failed again and why).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import BulkPosting, JobRun, Posting
from storage.states import PostingState

BULK_JOB = "bulk_resync"
#: reasons a run's message lists, most postings first
REASONS = 5


async def start_run(s: AsyncSession, actor: str | None, detail: dict[str, Any], now: datetime) -> int:
    """A new run's row; returns its id."""
    run = JobRun(
        job=BULK_JOB, run_key=f"{now:%Y%m%d%H%M%S}-{uuid4().hex[:12]}", holder=actor or "", ran_at=now
    )
    run.detail = detail
    s.add(run)
    await s.flush()
    return int(run.id)


async def update_run(s: AsyncSession, run_id: int, **detail: Any) -> None:
    """Merge ``detail`` into the run's counts."""
    run = await s.get(JobRun, run_id)
    if run is not None:
        run.detail = {**(run.detail or {}), **detail}


async def add_postings(s: AsyncSession, run_id: int, posting_ids: Iterable[int]) -> None:
    """The postings the run queued (each once)."""
    ids = sorted(set(posting_ids))
    if ids:
        await s.execute(insert(BulkPosting), [{"run_id": run_id, "posting_id": p} for p in ids])


async def run_detail(s: AsyncSession, run_id: int) -> tuple[JobRun, dict[str, int]] | None:
    """The run and its postings by current state (``None``: no such run)."""
    run = await s.get(JobRun, run_id)
    if run is None or run.job != BULK_JOB:
        return None
    rows = await s.execute(
        select(Posting.state, func.count())
        .join(BulkPosting, BulkPosting.posting_id == Posting.id)
        .where(BulkPosting.run_id == run_id)
        .group_by(Posting.state)
    )
    return run, {str(state): int(n) for state, n in rows.all()}


async def failure_reasons(s: AsyncSession, run_id: int, limit: int = REASONS) -> Sequence[Any]:
    """Why the run's postings that fail now fail: (reason, how many), most first."""
    n = func.count()
    rows = await s.execute(
        select(Posting.last_error, n)
        .join(BulkPosting, BulkPosting.posting_id == Posting.id)
        .where(BulkPosting.run_id == run_id, Posting.state == PostingState.FAILED)
        .group_by(Posting.last_error)
        .order_by(n.desc(), Posting.last_error)
        .limit(limit)
    )
    return rows.all()


async def runs_of_postings(s: AsyncSession, posting_ids: Iterable[int], since: datetime) -> set[int]:
    """The bulk runs started since ``since`` that queued any of these postings."""
    ids = sorted(set(posting_ids))
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        rows = await s.scalars(
            select(BulkPosting.run_id)
            .distinct()
            .join(JobRun, JobRun.id == BulkPosting.run_id)
            .where(BulkPosting.posting_id.in_(ids[start : start + 500]), JobRun.ran_at >= since)
        )
        found.update(int(r) for r in rows.all())
    return found
