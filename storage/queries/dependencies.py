"""The one rule of postings that depend on another posting of the same document.

A planned posting may name the slot it waits for (``depends_on``: a bill's payment
waits for its invoice). The claim and the choice of due companies skip a posting whose
dependency is not done (:func:`waits_for_dependency`); when the dependency fails, the
ones behind it are parked as ``waiting`` (:func:`park_dependents`, so nothing counts
them as due or stuck), and when it is done they are due again (:func:`release_dependents`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from storage.models import Posting
from storage.queries.upsert import Executor
from storage.rows import rows_changed
from storage.states import PostingState

#: states of the posting another waits for in which the one waiting may be sent: it is in
#: the ledger, or a person or the document decided it will not be (issue 12: an
#: ignored invoice lets its payment go on its own; a withdrawn one withdraws it too)
DEPENDENCY_DONE = (PostingState.SYNCED, PostingState.BOOKED, PostingState.IGNORED, PostingState.WITHDRAWN)


def waits_for_dependency(p: Any, dep: Any) -> Any:
    """THE rule: a posting whose ``depends_on`` posting of the same document is not done waits.

    ``p`` and ``dep`` are the posting table (or model) and an alias of it; the claim and the
    choice of due companies both use it, so a waiting posting neither runs nor keeps its
    company due.
    """
    return (
        select(dep.id)
        .where(
            dep.document_id == p.document_id,
            dep.integration_id == p.integration_id,
            dep.slot == p.depends_on,
            dep.state.notin_(DEPENDENCY_DONE),
        )
        .exists()
    )


#: error code of a posting parked while the posting it depends on failed
WAIT_DEPENDENCY = "waiting_for_dependency"


def _dependent_ids(conn: Executor, posting_id: int) -> list[int]:
    """The ids of the postings that wait for this one (almost always none)."""
    # Two plain look-ups by index: the posting by its id, then its document's postings that
    # name its slot (as one join, SQLite's planner scanned every posting for the join).
    me = conn.execute(
        select(Posting.document_id, Posting.integration_id, Posting.slot).where(Posting.id == posting_id)
    ).first()
    if me is None:
        return []
    rows = conn.execute(
        select(Posting.id).where(
            Posting.document_id == me.document_id,
            Posting.integration_id == me.integration_id,
            Posting.depends_on == me.slot,
        )
    )
    return [int(r[0]) for r in rows]


def park_dependents(conn: Executor, posting_id: int, reason: str, now: datetime) -> int:
    """The posting failed: postings queued behind it wait (``waiting``, not queued, not failed)
    until it is in the ledger, so nothing shows them as due or stuck meanwhile."""
    ids = _dependent_ids(conn, posting_id)
    if not ids:
        return 0
    result = conn.execute(
        update(Posting)
        .where(
            Posting.id.in_(ids),
            Posting.state.in_((PostingState.PENDING, PostingState.RETRYING)),
        )
        .values(state=PostingState.WAITING, error_code=WAIT_DEPENDENCY, last_error=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result)


def release_dependents(conn: Executor, posting_id: int, now: datetime) -> int:
    """The posting is in the ledger (or ignored, withdrawn): the ones parked behind it are due
    again, keeping their place in the company's queue (their ``queued_at``)."""
    ids = _dependent_ids(conn, posting_id)
    if not ids:
        return 0
    result = conn.execute(
        update(Posting)
        .where(
            Posting.id.in_(ids),
            Posting.state == PostingState.WAITING,
            Posting.error_code == WAIT_DEPENDENCY,
        )
        .values(
            state=PostingState.PENDING, error_code=None, last_error=None, next_attempt_at=now, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result)
