"""The hot queries of the posting queue: claim due work, settle it, hold company leases.

Plain functions over a synchronous ``Connection`` (or ``Session``), run inside
one transaction by :meth:`storage.db.Database.run` or ``AsyncSession.run_sync``.
Each is one statement where it can be, so it is atomic on SQLite and
PostgreSQL alike and safe when several processes run it at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, func, or_, select, update
from sqlalchemy.orm import aliased

from storage.models import Attempt, Document, Integration, Lease, Outage, Posting, table_of
from storage.queries.dependencies import waits_for_dependency
from storage.queries.upsert import Executor, upsert_into
from storage.rows import rows_changed
from storage.states import PostingState

#: the holder name of a lease that only makes a company rest after a ledger failure
BACKOFF_HOLDER = "backoff"


def release_due_retries(conn: Executor, now: datetime) -> int:
    """``retrying`` postings whose backoff has passed go back to ``pending``."""
    result = conn.execute(
        update(Posting)
        .where(Posting.state == PostingState.RETRYING, Posting.next_attempt_at <= now)
        .values(state=PostingState.PENDING, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(result)


def postings_retrying_since(conn: Executor, cutoff: datetime, limit: int) -> list[Any]:
    """Up to ``limit`` postings still retrying that were queued before ``cutoff``, with
    their document's id and integration's name (what a give-up needs); none of a ledger
    that is out (they wait with the outage)."""
    return list(
        conn.execute(
            select(
                Posting.id,
                Posting.document_id,
                Posting.integration_id,
                Posting.last_error,
                Posting.external_ref,
                Posting.idempotency_key,
                Document.external_id,
                Integration.name,
            )
            .join(Document, Document.id == Posting.document_id)
            .join(Integration, Integration.id == Posting.integration_id)
            .where(
                Posting.state == PostingState.RETRYING,
                Posting.queued_at < cutoff,
                # while its ledger is out, a posting waits with the outage: it is not at fault
                ~select(_O.c.integration_id)
                .where(
                    _O.c.integration_id == Posting.integration_id,
                    _O.c.since.is_not(None),
                    _O.c.recovered_at.is_(None),
                )
                .exists(),
            )
            .order_by(Posting.id)
            .limit(limit)
        ).all()
    )


def give_up_posting(
    conn: Executor, posting_id: int, *, group_id: int, code: str, error: str, now: datetime
) -> bool:
    """A retrying posting stops retrying: ``failed`` in its error group. ``False`` if it moved meanwhile."""
    done = conn.execute(
        update(Posting)
        .where(Posting.id == posting_id, Posting.state == PostingState.RETRYING)
        .values(
            state=PostingState.FAILED,
            error_group_id=group_id,
            error_code=code,
            last_error=error,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(done))


def recover_stuck(conn: Executor, now: datetime, company: str | None = None) -> list[int]:
    """``in_flight`` past its lease -> ``pending`` with look-up-first (a worker died)."""
    cond = [Posting.state == PostingState.IN_FLIGHT, Posting.lease_expires_at < now]
    if company is not None:
        cond.append(Posting.company_key == company)
    ids = [int(i) for i in conn.execute(select(Posting.id).where(*cond)).scalars().all()]
    if ids:
        conn.execute(
            update(Posting)
            .where(Posting.id.in_(ids), Posting.state == PostingState.IN_FLIGHT)
            .values(
                state=PostingState.PENDING,
                lookup_first=True,
                queued_trigger="sweeper",
                lease_expires_at=None,
                lease_token=None,
                next_attempt_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    return ids


def due_companies(
    conn: Executor, now: datetime, limit: int, exclude: frozenset[str] = frozenset()
) -> list[str]:
    """Companies with due pending postings, oldest queue first, not held by anyone.

    A company with a posting still in flight (its worker may be dead, but its lease has
    not run out) is not due: its queue cannot move past that posting.
    """
    in_flight = aliased(Posting)
    stmt = (
        select(Posting.company_key)
        .join(Integration, Integration.id == Posting.integration_id)
        .outerjoin(Lease, Lease.key == Posting.company_key)
        .where(
            Posting.state == PostingState.PENDING,
            Posting.next_attempt_at <= now,
            Integration.paused.is_(False),
            or_(Lease.key.is_(None), Lease.expires_at < now),
            ~waits_for_dependency(Posting, aliased(Posting)),
        )
        .group_by(Posting.company_key)
        # per company, after grouping: one index probe per candidate company, not per row
        .having(
            ~select(in_flight.id)
            .where(in_flight.company_key == Posting.company_key, in_flight.state == PostingState.IN_FLIGHT)
            .exists()
        )
        .order_by(func.min(Posting.queued_at))
        .limit(limit + len(exclude))
    )
    return [c for c in conn.execute(stmt).scalars().all() if c not in exclude][:limit]


def acquire_lease(conn: Executor, key: str, holder: str, now: datetime, until: datetime) -> bool:
    """Take the company's lease if free or expired (or already ours)."""
    result = conn.execute(
        update(Lease)
        .where(Lease.key == key, or_(Lease.expires_at < now, Lease.holder == holder))
        .values(holder=holder, expires_at=until)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result):
        return True
    inserted = conn.execute(
        upsert_into(conn, Lease)
        .values(key=key, holder=holder, expires_at=until)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(rows_changed(inserted))


def extend_lease(conn: Executor, key: str, holder: str, until: datetime) -> bool:
    result = conn.execute(
        update(Lease)
        .where(Lease.key == key, Lease.holder == holder)
        .values(expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return bool(rows_changed(result))


def release_lease(conn: Executor, key: str, holder: str, hold_until: datetime | None = None) -> None:
    """Give the lease back; ``hold_until`` keeps the company resting (ledger backoff)."""
    if hold_until is None:
        conn.execute(delete(Lease).where(Lease.key == key, Lease.holder == holder))
    else:
        conn.execute(
            update(Lease)
            .where(Lease.key == key, Lease.holder == holder)
            .values(holder=BACKOFF_HOLDER, expires_at=hold_until)
            .execution_options(synchronize_session=False)
        )


def clear_backoff(conn: Executor, key: str) -> None:
    """A person asked for work now: end a company's rest (never a live worker's lease)."""
    conn.execute(delete(Lease).where(Lease.key == key, Lease.holder == BACKOFF_HOLDER))


# The hot path's statements are built once with bind parameters: SQLAlchemy then
# finds them in its compiled cache instead of rebuilding and re-keying them per posting.
_P = table_of(Posting)
_D = table_of(Document)
_I = table_of(Integration)
_O = table_of(Outage)
_IN_FLIGHT = table_of(Posting).alias("in_flight")
_DEP = table_of(Posting).alias("dependency")

_OUTAGE_DECLARED = select(_O.c.integration_id).where(
    _O.c.integration_id == bindparam("iid"), _O.c.since.is_not(None), _O.c.recovered_at.is_(None)
)


def outage_declared(conn: Executor, integration_id: int) -> bool:
    """Whether the outage watch has announced that this integration's ledger is down."""
    return conn.execute(_OUTAGE_DECLARED, {"iid": integration_id}).first() is not None


_CLAIM = (
    update(_P)
    .where(
        _P.c.id
        == select(_P.c.id)
        # ``pending`` means due (a wait is ``retrying`` until the sweep releases it), so
        # the queue index (company, state, queued_at, id) serves this without a sort.
        .where(
            _P.c.company_key == bindparam("company"),
            _P.c.state == PostingState.PENDING,
            ~waits_for_dependency(_P.c, _DEP.c),
        )
        .order_by(_P.c.queued_at, _P.c.id)
        .limit(1)
        .scalar_subquery(),
        _P.c.state == PostingState.PENDING,
        # The queue never moves past an unresolved in-flight posting (a dead worker's, until
        # its lease runs out and the sweeper turns it into a look-up-first retry).
        ~select(_IN_FLIGHT.c.id)
        .where(_IN_FLIGHT.c.company_key == bindparam("company"), _IN_FLIGHT.c.state == PostingState.IN_FLIGHT)
        .exists(),
        # A pause stops a drain already under way at its next posting, not only new drains.
        ~select(_I.c.id).where(_I.c.id == _P.c.integration_id, _I.c.paused.is_(True)).exists(),
    )
    # sent_hash: what this attempt will write, known should the process die mid-call;
    # after an unknown outcome it keeps what the uncertain write carried.
    .values(
        state=PostingState.IN_FLIGHT,
        lease_expires_at=bindparam("lease_until"),
        lease_token=bindparam("token"),
        updated_at=bindparam("now"),
        sent_hash=case((_P.c.lookup_first, _P.c.sent_hash), else_=_P.c.desired_hash),
    )
    .returning(_P.c.id)
)

_CLAIMED = (
    select(
        _P.c.id,
        _P.c.kind,
        _P.c.slot,
        _P.c.period,
        _P.c.external_ref,
        _P.c.desired_hash,
        _P.c.synced_hash,
        _P.c.sent_hash,
        _P.c.synced_fields,
        _P.c.lookup_first,
        _P.c.force,
        _P.c.attempts,
        _P.c.queued_trigger,
        _P.c.queued_actor,
        _P.c.idempotency_key,
        _P.c.error_group_id,
        _P.c.document_id,
        _D.c.kind.label("doc_kind"),
        _D.c.source,
        _D.c.external_id,
        _D.c.data,
        _I.c.name.label("integration"),
        _I.c.monthly_quota,
        _I.c.quota_used,
        _I.c.quota_month,
    )
    .join(_D, _D.c.id == _P.c.document_id)
    .join(_I, _I.c.id == _P.c.integration_id)
    .where(_P.c.id == bindparam("pid"))
)


def claim_next(conn: Executor, company: str, now: datetime, lease_until: datetime, token: str) -> Any | None:
    """Move the company's first queued posting to ``in_flight``; return it with its document.

    ``token`` names the drain that claims it: only that drain may record its outcome.
    Nothing is claimed while another posting of the company is in flight.
    """
    posting_id = conn.execute(
        _CLAIM, {"company": company, "now": now, "lease_until": lease_until, "token": token}
    ).scalar_one_or_none()
    if posting_id is None:
        return None
    return conn.execute(_CLAIMED, {"pid": posting_id}).one()


# Fenced by the claiming drain's token: a stalled worker whose posting was recovered and
# claimed again by another drain cannot record over it.
_SETTLE = update(_P).where(
    _P.c.id == bindparam("pid"),
    _P.c.state == PostingState.IN_FLIGHT,
    _P.c.lease_token == bindparam("token"),
)
_SETTLE_SYNCED = _SETTLE.values(
    # ``synced`` unless the document changed while we were sending: then queued again.
    state=case(
        (_P.c.desired_hash == bindparam("sent"), PostingState.SYNCED.value), else_=PostingState.PENDING.value
    ),
    synced_hash=bindparam("sent"),
    sent_hash=bindparam("sent"),
)
_SETTLE_WITHDRAWN = _SETTLE.values(
    # ``withdrawn`` unless the document came to need it again meanwhile: then queued again.
    state=case((_P.c.desired_hash.is_(None), PostingState.WITHDRAWN.value), else_=PostingState.PENDING.value),
)
_ATTEMPT = table_of(Attempt).insert()


def settle(
    conn: Executor,
    posting_id: int,
    token: str,
    values: dict[str, Any],
    synced_hash: str | None = None,
    withdrawn: bool = False,
) -> bool:
    """Write an in-flight posting's outcome; ``synced_hash`` marks a successful write,
    ``withdrawn`` a record taken out of the ledger.

    ``False`` when the posting is no longer this drain's (``token``): nothing was written.
    """
    params = {"pid": posting_id, "token": token, **values, "lease_token": None}
    if withdrawn:
        params.pop("state", None)
        result = conn.execute(_SETTLE_WITHDRAWN, params)
    elif synced_hash is None:
        result = conn.execute(_SETTLE, params)
    else:
        result = conn.execute(_SETTLE_SYNCED, {**params, "sent": synced_hash})
    return bool(rows_changed(result))


def log_attempt(conn: Executor, values: dict[str, Any]) -> None:
    """Append one attempt to the integration log."""
    conn.execute(_ATTEMPT, values)
