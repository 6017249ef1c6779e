"""A person's resync, restart and ignore of one document's postings.

A person's action moves a posting's state *before* any ledger call, with a guarded
update, so a double click (or two people clicking) queues it once. A booked
posting is never queued again: a second voucher would book it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Session
from storage.models import Activity, Attempt, Document, Posting
from storage.queries.dependencies import DEPENDENCY_DONE, release_dependents
from storage.queries.documents import document_by_key, postings_of_document
from storage.queries.groups import close_settled_groups
from storage.queries.postings import clear_backoff
from storage.queries.requeue import force_requeue, ignore_if_in
from storage.states import Operation, Outcome, PostingState, Trigger
from sync.changes import Change
from sync.engine import Engine
from sync.ingest import apply_plan
from sync.kinds import KINDS, plan
from sync.planner import Eligibility, PlannedPosting, dependency_wait

#: states a person's resync may move to pending (not in flight, not booked, not queued)
RESYNCABLE = (
    PostingState.FAILED,
    PostingState.RETRYING,
    PostingState.SYNCED,
    PostingState.WAITING,
    PostingState.IGNORED,
)
IGNORABLE = (PostingState.FAILED, PostingState.RETRYING, PostingState.PENDING, PostingState.WAITING)


class DocumentNotFound(LookupError):
    """No document with that key."""


@dataclass(frozen=True)
class ActionOutcome:
    """What a person's action did to one posting, in their words."""

    posting_id: int | None
    kind: str
    ok: bool
    message: str


async def find_document(s: Session, source: str, kind: str, external_id: str) -> Document:
    """The document of that natural key; :class:`DocumentNotFound` if there is none."""
    doc = await document_by_key(s, source, kind, external_id)
    if doc is None:
        raise DocumentNotFound(f"No {kind} {external_id} from {source}.")
    return doc


async def resync_document(
    engine: Engine,
    source: str,
    kind: str,
    external_id: str,
    posting_kinds: Sequence[str],
    actor: str | None,
    trigger: Trigger = Trigger.MANUAL,
) -> list[ActionOutcome]:
    """Queue the named postings of one document again (``all``: every one that applies)."""
    now = engine.clock()
    outcomes: list[ActionOutcome] = []
    changes: list[Change] = []
    async with engine.db.sessions() as s, s.begin():
        doc = await find_document(s, source, kind, external_id)
        outcomes = await requeue_document(engine, s, doc, set(posting_kinds), actor, trigger, now, changes)
        s.add(
            Activity(
                actor=actor,
                action="resync",
                subject=f"document:{doc.id}",
                at=now,
                outcome="ok" if any(o.ok for o in outcomes) else "refused",
                detail={
                    "postings": [o.kind for o in outcomes],
                    "messages": [o.message for o in outcomes],
                },
            )
        )
    engine.feed.publish(changes)
    engine.wake()
    return outcomes


async def requeue_document(
    engine: Engine,
    s: Session,
    doc: Document,
    kinds: set[str],
    actor: str | None,
    trigger: Trigger,
    now: datetime,
    changes: list[Change],
) -> list[ActionOutcome]:
    """Queue the named postings of ``doc`` again inside the caller's transaction."""
    integration = next(n for n, i in engine.integration_ids.items() if i == doc.integration_id)
    data = KINDS[doc.kind].shape.model_validate(doc.data)
    planned = resync_plan(engine, doc)
    existing = {p.slot: p for p in await postings_of_document(s, doc.id)}
    # a kind ("journal") names every posting of that kind; a slot ("journal:2026-10") one
    wanted = (
        set(planned)
        if "all" in kinds
        else {slot for slot in set(planned) | set(existing) if slot in kinds or slot.split(":")[0] in kinds}
    )
    outcomes: list[ActionOutcome] = []
    for kind in sorted(kinds - {"all"}):
        if not any(slot == kind or slot.split(":")[0] == kind for slot in wanted):
            outcomes.append(ActionOutcome(None, kind, False, _why_no_posting(doc, kind, data)))
    for slot in sorted(wanted):
        p = existing.get(slot)
        want = planned.get(slot)
        if p is None and want is not None:
            current: dict[str, Posting] = {}
            apply_plan(s, doc, integration, [want], current, now)
            await s.flush()
            p = current[slot]
            p.queued_trigger, p.queued_actor, p.force = trigger, actor, True
            p.state, p.error_code, p.last_error = PostingState.PENDING, None, None
            outcomes.append(ActionOutcome(p.id, p.kind, True, f"{_label(p)} queued."))
            changes.append(Change(p.id, doc.id, p.state, None))
            continue
        if p is None:
            continue
        if want is None and p.state == PostingState.WITHDRAWN:
            outcomes.append(ActionOutcome(p.id, p.kind, False, _why_no_posting(doc, p.kind, data)))
            continue
        outcome = await _requeue_guarded(s, p, want, trigger, actor, now)
        if outcome.ok:
            p.depends_on = want.depends_on if want is not None else p.depends_on
        outcomes.append(_waiting_note(outcome, p, existing))
        if outcome.ok:
            changes.append(Change(p.id, doc.id, PostingState.PENDING, p.error_group_id))
    if any(o.ok for o in outcomes):
        await s.run_sync(clear_backoff, integration)
    return outcomes


def resync_plan(engine: Engine, doc: Document) -> dict[str, PlannedPosting]:
    """The postings a person's resync of ``doc`` asks for, by slot."""
    integration = next(n for n, i in engine.integration_ids.items() if i == doc.integration_id)
    data = KINDS[doc.kind].shape.model_validate(doc.data)
    # A person asked: history-start and auto-transfer do not hold it back.
    return {
        p.slot: p
        for p in plan(doc.kind, data, Eligibility(True, None, engine.rules(integration).ready_statuses))
    }


async def _requeue_guarded(
    s: Session,
    p: Posting,
    want: PlannedPosting | None,
    trigger: Trigger,
    actor: str | None,
    now: datetime,
) -> ActionOutcome:
    if p.state == PostingState.BOOKED:
        return ActionOutcome(
            p.id,
            p.kind,
            False,
            (
                f"{_label(p)} is booked in the ledger as {p.external_ref}. A booked voucher "
                "cannot be changed, and a second one would book it twice; correct it in the ledger."
            ),
        )
    if p.state == PostingState.IN_FLIGHT:
        return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is being sent right now.")
    if p.state == PostingState.PENDING:
        return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is already queued.")
    done = await force_requeue(
        s,
        p.id,
        RESYNCABLE,
        now=now,
        trigger=trigger,
        actor=actor,
        desired_hash=want.desired_hash if want is not None else None,
    )
    if not done:
        return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is already queued.")
    return ActionOutcome(p.id, p.kind, True, f"{_label(p)} queued.")


async def ignore_posting(engine: Engine, posting_id: int, actor: str | None) -> ActionOutcome:
    """A person decides this posting is not to be sent."""
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
        p = await s.get(Posting, posting_id)
        if p is None:
            return ActionOutcome(posting_id, "", False, "No such posting.")
        ok = await ignore_if_in(s, posting_id, IGNORABLE, now=now, actor=actor)
        message = (
            f"{_label(p)} ignored."
            if ok
            else (
                f"{_label(p)} is {p.state.replace('_', ' ')}; only a posting that waits or failed "
                "can be ignored."
            )
        )
        s.add(_activity(actor, "ignore", posting_id, now, ok, message))
        if ok:
            s.add(_person_attempt(posting_id, actor, now, Outcome.REFUSED, "Ignored by a person."))
            # a person decided it is not to be sent: what waits for it goes on its own
            await s.run_sync(lambda ss: release_dependents(ss, posting_id, now))
            if p.error_group_id is not None:
                # the last open member ignored: the group has nothing left to fix
                gid = p.error_group_id
                await s.run_sync(lambda ss: close_settled_groups(ss, [gid]))
        change = Change(p.id, p.document_id, PostingState.IGNORED if ok else p.state, p.error_group_id)
    engine.feed.publish([change])
    engine.wake()  # a posting waiting for this one may go now (storage.queries.postings.DEPENDENCY_DONE)
    return ActionOutcome(posting_id, p.kind, ok, message)


def _waiting_note(outcome: ActionOutcome, p: Posting, existing: dict[str, Posting]) -> ActionOutcome:
    """A queued posting whose dependency is not in the ledger says it waits for it."""
    dep = existing.get(p.depends_on) if p.depends_on else None
    if dep is None or dep.state in DEPENDENCY_DONE or p.depends_on is None:
        return outcome
    why = f"{dependency_wait(p.depends_on)}: it is sent once that one is in the ledger"
    if outcome.ok:
        return ActionOutcome(p.id, p.kind, True, f"{_label(p)} queued, {why}.")
    if p.state == PostingState.PENDING:
        return ActionOutcome(p.id, p.kind, False, f"{_label(p)} is already queued, {why}.")
    return outcome


async def mark_handled(engine: Engine, posting_id: int, actor: str | None) -> ActionOutcome:
    """A person says the change a booked voucher did not get (or its withdrawal) is handled
    in the ledger: the posting leaves ``/ledger attention``; who and when stay on it."""
    now = engine.clock()
    async with engine.db.sessions() as s, s.begin():
        p = await s.get(Posting, posting_id)
        if p is None:
            return ActionOutcome(posting_id, "", False, "No such posting.")
        ok = p.state == PostingState.BOOKED and bool(p.last_error)
        if ok:
            p.last_error = p.error_code = None
            p.handled_by, p.handled_at, p.updated_at = actor, now, now
            message = f"{_label(p)}: the change not sent to voucher {p.external_ref} is marked handled."
            handled = "Marked handled by a person (corrected in the ledger)."
            attempt = _person_attempt(posting_id, actor, now, Outcome.BOOKED, handled)
            attempt.error_code, attempt.external_ref = "handled", p.external_ref
            s.add(attempt)
        elif p.handled_by:
            message = f"{_label(p)} was already marked handled."
        else:
            message = f"{_label(p)} has nothing to mark handled: no change is waiting for a person."
        s.add(_activity(actor, "mark_handled", posting_id, now, ok, message))
        change = Change(p.id, p.document_id, p.state, p.error_group_id)
    engine.feed.publish([change])
    return ActionOutcome(posting_id, p.kind, ok, message)


def _activity(
    actor: str | None, action: str, posting_id: int, now: datetime, ok: bool, message: str
) -> Activity:
    """The audit row of a person's decision about one posting."""
    return Activity(
        actor=actor,
        action=action,
        subject=f"posting:{posting_id}",
        at=now,
        outcome="ok" if ok else "refused",
        detail={"message": message},
    )


def _person_attempt(
    posting_id: int, actor: str | None, now: datetime, outcome: Outcome, message: str
) -> Attempt:
    """The log line of a person's decision: nothing was sent, the posting's state changed."""
    return Attempt(
        posting_id=posting_id,
        started_at=now,
        finished_at=now,
        trigger=Trigger.MANUAL,
        actor=actor,
        operation=Operation.NONE,
        outcome=outcome,
        message=message,
    )


def _label(p: Posting) -> str:
    name = {"invoice": "The invoice posting", "payment": "The payment posting", "journal": "The journal"}.get(
        p.kind, f"The {p.kind.replace('_', ' ')} posting"
    )
    return f"{name} ({p.period})" if p.period else name


def _why_no_posting(doc: Document, kind: str, data: Any) -> str:
    why = KINDS[doc.kind].why_no_posting(data, kind)
    return why or f"A {doc.kind.replace('_', ' ')} has no {kind} posting."
