"""Periodic jobs: one run per job and period across replicas, and the monthly booking quota."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, update

from storage.models import Integration, JobRun, Posting, table_of
from storage.queries.upsert import Executor, upsert_into
from storage.rows import rows_changed
from storage.states import PostingState

#: error code of a posting waiting because the monthly booking quota is used up
QUOTA_CODE = "quota"

_P = table_of(Posting)
_I = table_of(Integration)


def claim_job_run(conn: Executor, job: str, run_key: str, holder: str, now: datetime) -> int | None:
    """Claim the one run of ``job`` for ``run_key`` (a day, a month); ``None``: already taken.

    The unique ``(job, run_key)`` makes this safe across replicas: on PostgreSQL a
    second claimer waits for the first to commit and then finds the row.
    """
    inserted = conn.execute(
        upsert_into(conn, JobRun)
        .values(job=job, run_key=run_key, holder=holder, ran_at=now)
        .on_conflict_do_nothing(index_elements=["job", "run_key"])
        .returning(JobRun.id)
    ).scalar_one_or_none()
    return int(inserted) if inserted is not None else None


def count_booking(conn: Executor, integration: str, month: str) -> None:
    """One more record created this month, for the integration's monthly quota."""
    conn.execute(
        update(_I)
        .where(_I.c.name == integration, _I.c.monthly_quota > 0)
        .values(quota_used=case((_I.c.quota_month == month, _I.c.quota_used + 1), else_=1), quota_month=month)
    )


def release_quota_blocked(conn: Executor, now: datetime) -> int:
    """A new month: postings held back by the monthly quota go back to the queue."""
    result = conn.execute(
        update(_P)
        .where(_P.c.state == PostingState.WAITING, _P.c.error_code == QUOTA_CODE)
        .values(
            state=PostingState.PENDING,
            error_code=None,
            last_error=None,
            queued_at=now,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    return rows_changed(result)
