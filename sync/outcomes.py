"""Writing one attempt's outcome: the posting's new state, its error group, give-up.

Runs inside the worker's transaction (the same one that claims the next posting).
The write is fenced by the drain's lease token: when the posting is no longer this
drain's, :class:`LeaseLost` rolls the transaction back, so a stalled worker never
records over the one that took over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import RecordStatus
from storage.db import Connection
from storage.queries.dependencies import park_dependents, release_dependents
from storage.queries.groups import close_settled_groups, upsert_error_group
from storage.queries.jobs import QUOTA_CODE, count_booking
from storage.queries.postings import log_attempt, outage_declared, settle
from storage.states import Operation, Outcome, PostingState, Trigger
from sync.changes import Change
from sync.engine import Engine
from sync.errors import Failure, FailureKind, resync_cannot_help
from sync.planner import dependency_wait
from sync.policy import fingerprint
from sync.synchronizer import Report
from sync.voucher_change import BOOKED_CHANGE, booked_change_text, unsent_change
from sync.withdrawal import WITHDRAW_BOOKED, booked_reason


class LeaseLost(Exception):
    """The posting was recovered and claimed by another drain while this one waited."""


@dataclass
class _Settled:
    """What the attempt log and the change feed say about the new state."""

    outcome: Outcome
    message: str | None = None
    error_code: str | None = None
    group_id: int | None = None
    synced_hash: str | None = None
    #: a transient failure given up on: the outage watch still counts it as unanswered
    gave_up: bool = False


def record(
    conn: Connection,
    engine: Engine,
    row: Any,
    token: str,
    report: Report,
    started: datetime,
    finished: datetime,
) -> None:
    """Write the attempt and the posting's new state (inside the caller's transaction).

    Raises :class:`LeaseLost` (rolling the transaction back) when the posting is no
    longer this drain's.
    """
    values: dict[str, Any] = {
        "attempts": row.attempts + 1,
        "lease_expires_at": None,
        "updated_at": finished,
        "queued_trigger": None,
        "queued_actor": None,
        "force": False,
        "lookup_first": row.lookup_first and not report.lookup_done,
        "error_cause": None,
    }
    ref = report.result.external_ref if report.result else row.external_ref
    done = _new_state(conn, engine, row, report, values, ref, finished)
    if not settle(conn, row.id, token, values, done.synced_hash, done.outcome is Outcome.WITHDRAWN):
        raise LeaseLost(row.id)
    if done.outcome is Outcome.SYNCED and report.operation is Operation.CREATE and row.monthly_quota:
        count_booking(conn, row.integration, finished.strftime("%Y-%m"))
    log_attempt(
        conn,
        dict(
            posting_id=row.id,
            started_at=started,
            finished_at=finished,
            trigger=_trigger_of(row),
            actor=row.queued_actor,
            operation=report.operation,
            outcome=done.outcome,
            error_code=done.error_code,
            message=done.message,
            external_ref=ref,
            gave_up=done.gave_up,
        ),
    )
    if done.outcome in (Outcome.SYNCED, Outcome.BOOKED, Outcome.WITHDRAWN):
        release_dependents(conn, row.id, finished)
    elif values.get("state") == PostingState.FAILED:
        park_dependents(conn, row.id, dependency_wait(row.slot), finished)
    if done.outcome in (Outcome.SYNCED, Outcome.BOOKED, Outcome.WITHDRAWN) and done.group_id is not None:
        close_settled_groups(conn, [done.group_id])
    state = PostingState.SYNCED if done.outcome is Outcome.SYNCED else values["state"]
    left = row.error_group_id if row.error_group_id not in (None, done.group_id) else None
    report.change = Change(row.id, row.document_id, str(state), done.group_id, left)


def _trigger_of(row: Any) -> str:
    """What queued the attempt; an automatic one after the first is a retry."""
    trigger = row.queued_trigger or (Trigger.RETRY if row.attempts else Trigger.AUTO)
    if trigger == Trigger.AUTO and row.attempts:
        trigger = Trigger.RETRY
    return str(trigger)


def _new_state(
    conn: Connection,
    engine: Engine,
    row: Any,
    report: Report,
    values: dict[str, Any],
    ref: str | None,
    finished: datetime,
) -> _Settled:
    """Fill ``values`` with the posting's new columns for the attempt's outcome."""
    outcome, failure = report.outcome, report.failure
    if outcome is Outcome.WITHDRAWN:
        # The record is gone; should the document need it again, it is created anew.
        values.update(
            state=PostingState.WITHDRAWN,
            external_ref=None,
            erp_status=None,
            synced_hash=None,
            sent_hash=None,
            last_error=None,
            error_code=None,
        )
        return _Settled(outcome, group_id=row.error_group_id)
    if outcome is Outcome.SYNCED:
        values.update(
            external_ref=ref,
            erp_status=RecordStatus.DRAFT.value,
            last_error=None,
            error_code=None,
            next_attempt_at=finished,
            queued_at=finished,
            synced_fields=report.fields,
            unsent_change=None,
            handled_by=None,
            handled_at=None,
        )
        return _Settled(outcome, group_id=row.error_group_id, synced_hash=row.desired_hash)
    if outcome is Outcome.REFUSED and failure is not None and failure.code == QUOTA_CODE:
        values.update(state=PostingState.WAITING, last_error=failure.message, error_code=failure.code)
        return _Settled(outcome, failure.message, failure.code, row.error_group_id)
    if outcome is Outcome.BOOKED:
        return _booked(row, report, values, ref)
    assert failure is not None
    return _failure(conn, engine, row, report, failure, values, ref, finished)


def _booked(row: Any, report: Report, values: dict[str, Any], ref: str | None) -> _Settled:
    """Booked: never touched again; a person hears of a change or withdrawal it missed."""
    values.update(
        state=PostingState.BOOKED,
        external_ref=ref,
        erp_status=RecordStatus.BOOKED.value,
        error_code=None,
    )
    done = _Settled(Outcome.BOOKED, group_id=row.error_group_id)
    if row.desired_hash is None:
        done.message = booked_reason(row.doc_kind, row.kind, row.period, ref)
        values["last_error"], done.error_code = done.message, WITHDRAW_BOOKED
        values.update(handled_by=None, handled_at=None)
    elif row.synced_hash != row.desired_hash:
        change = unsent_change(row.synced_fields, report.fields or {})
        done.message = booked_change_text(ref, change)
        values.update(last_error=done.message, error_code=BOOKED_CHANGE, unsent_change=change)
        values.update(handled_by=None, handled_at=None)
        done.error_code = BOOKED_CHANGE
    return done


def _failure(
    conn: Connection,
    engine: Engine,
    row: Any,
    report: Report,
    failure: Failure,
    values: dict[str, Any],
    ref: str | None,
    finished: datetime,
) -> _Settled:
    """Failed: into its error group; a transient one retries later unless it gives up."""
    attempts = values["attempts"]
    outcome = report.outcome
    done = _Settled(outcome, failure.message, failure.code, row.error_group_id)
    values.update(last_error=failure.message, error_code=failure.code)
    if failure.cause is not None:
        values["error_cause"] = failure.cause[1]
    if outcome is Outcome.UNCERTAIN:
        values.update(lookup_first=True, sent_hash=row.desired_hash)
    # While an outage of the whole ledger is announced, a posting is not at fault for
    # failing: it waits with the rest instead of giving up (no per-item messages).
    give_up = (
        outcome in (Outcome.RETRYING, Outcome.UNCERTAIN)
        and not failure.rate_limited
        and engine.policy.gives_up(attempts)
        and not outage_declared(conn, engine.integration_ids[row.integration])
    )
    if outcome is Outcome.FAILED or give_up:
        if give_up:
            # The posting keeps the ledger's words; the log line says that ledgerops stopped.
            # A person's resync that fails at once says what failed now, not the count.
            if row.queued_trigger != Trigger.MANUAL:
                done.message = f"Gave up after {attempts} attempts. Last error: {failure.message}"
            done.outcome, done.gave_up = Outcome.FAILED, True
        # A refusal no resync can lift (a test company) is each posting's own story: a group's
        # "Resync all" could not help, so its message is the posting's, with Ignore.
        own = f"{failure.code}\x1f{row.idempotency_key}" if resync_cannot_help(failure.code) else failure.code
        done.group_id = upsert_error_group(
            conn,
            fingerprint=fingerprint(
                row.integration,
                own,
                failure.message,
                (row.external_id, row.idempotency_key, ref or ""),
            ),
            integration_id=engine.integration_ids[row.integration],
            code=failure.code,
            title=failure.message,
            now=finished,
        )
        values.update(state=PostingState.FAILED, error_group_id=done.group_id)
        return done
    at = engine.policy.next_attempt(finished, attempts, failure.retry_after)
    values.update(state=PostingState.RETRYING, next_attempt_at=at)
    # The ledger is struggling, or a write may or may not have landed (an unknown outcome):
    # the rest of the company's queue waits rather than overtake this posting.
    report.hold_company_until = at if failure.kind in (FailureKind.TRANSIENT, FailureKind.UNCERTAIN) else None
    return done
