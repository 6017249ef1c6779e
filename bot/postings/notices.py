"""Database reads behind every Slack message: current state in, :mod:`bot.postings.facts` out.

Messages are rebuilt from these after every change, never patched, so what a
message says is always what the database says now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.postings.facts import (
    DocumentFacts,
    GroupMember,
    GroupNotice,
    GroupTry,
    LogEntry,
    PostingFacts,
    PostingNotice,
)
from storage.db import Session
from storage.models import Activity, Attempt, Document, Posting
from storage.queries import reads
from storage.queries.dependencies import DEPENDENCY_DONE
from storage.states import Outcome, PostingState
from sync.planner import dependency_wait

QUEUED = (PostingState.PENDING, PostingState.IN_FLIGHT, PostingState.RETRYING, PostingState.WAITING)
#: log rows read for Show log (a bill has a handful; a pathological one stays bounded)
LOG_LIMIT = 500


def document_facts(doc: Document) -> DocumentFacts:
    return DocumentFacts(
        id=doc.id, source=doc.source, kind=doc.kind, external_id=doc.external_id, data=dict(doc.data or {})
    )


def posting_facts(p: Posting, integration: str, last: Any = None) -> PostingFacts:
    """The posting's columns, and what its last attempt says about giving up."""
    return PostingFacts(
        id=p.id,
        kind=p.kind,
        state=p.state,
        integration=integration,
        attempts=p.attempts,
        period=p.period,
        external_ref=p.external_ref,
        last_error=p.last_error,
        queued_actor=p.queued_actor,
        queued_trigger=p.queued_trigger,
        next_attempt_at=p.next_attempt_at,
        error_group_id=p.error_group_id,
        error_code=p.error_code,
        gave_up=bool(last.gave_up) if last is not None else False,
        last_trigger=str(last.trigger) if last is not None else None,
        last_actor=last.actor if last is not None else None,
        queued_at=p.queued_at,
        unsent_change=tuple((str(f), str(old), str(new)) for f, old, new in p.unsent_change or ()),
        handled_by=p.handled_by,
        handled_at=p.handled_at,
    )


async def load_posting_notice(s: Session, posting_id: int) -> PostingNotice | None:
    """The facts of one posting's message, or ``None`` when the posting is gone."""
    found = await reads.posting_with_document(s, posting_id)
    if found is None:
        return None
    p, doc, integration = found
    siblings = await reads.states_of_document_postings(s, doc.id, p.integration_id)
    last = await reads.last_attempt_of_posting(s, p.id)
    fixed_by = None
    if p.state == PostingState.SYNCED and last is not None and last.outcome == Outcome.SYNCED:
        fixed_by = last.actor
    slots = await reads.dependencies_of_document(s, doc.id, p.integration_id)
    facts = posting_facts(p, integration, last)
    dependency = slots.get(p.depends_on) if p.depends_on else None
    if p.depends_on and dependency is not None and dependency[1] not in DEPENDENCY_DONE:
        facts = replace(facts, waiting_for=dependency_wait(p.depends_on))
    return PostingNotice(
        document=document_facts(doc),
        posting=facts,
        dependents=tuple((kind, state) for kind, state, on in slots.values() if on == p.slot),
        fixed_by=fixed_by,
        last_attempt_at=last.finished_at if last else None,
        sibling_states=siblings,
    )


async def load_group_notice(s: Session, group_id: int, sample: int = 10) -> GroupNotice | None:
    """The facts of an error group's message: counts by state, a sample, who acted."""
    found = await reads.group_with_integration(s, group_id)
    if found is None:
        return None
    g, integration = found
    members = await reads.failed_postings_of_group(s, group_id, sample)
    requested = await reads.people_who_queued_group(s, group_id, QUEUED)
    fixed = await reads.people_who_fixed_group(s, group_id, g.first_seen)
    tried = await reads.last_try_of_group(s, group_id, g.first_seen)
    return GroupNotice(
        group_id=g.id,
        integration=integration,
        error_code=g.error_code,
        title=g.title,
        first_seen=g.first_seen,
        last_seen=g.last_seen,
        counts=await reads.group_postings_by_state(s, group_id),
        sample=tuple(GroupMember(document_facts(d), k) for d, k in members),
        document_kinds=await reads.document_kinds_of_group(s, group_id) or frozenset({"document"}),
        requested_by=tuple(sorted(requested)),
        fixed_by=tuple(sorted(fixed)),
        last_try=GroupTry(tried.started_at, str(tried.actor), str(tried.outcome), tried.message)
        if tried is not None
        else None,
    )


def attempt_entry(a: Attempt, p_kind: str, period: str | None) -> LogEntry:
    return LogEntry(
        at=a.started_at,
        outcome=a.outcome,
        posting=f"{p_kind}:{period}" if period else p_kind,
        trigger=a.trigger,
        actor=a.actor,
        operation=a.operation,
        message=a.message,
        external_ref=a.external_ref,
        error_code=a.error_code,
        order=a.id,
    )


async def attempts_after(s: Session, posting_id: int, after_id: int | None) -> list[tuple[int, LogEntry]]:
    """Attempts of a posting newer than ``after_id`` (for the message's thread), oldest first."""
    p = await s.get(Posting, posting_id)
    if p is None:
        return []
    return [
        (a.id, attempt_entry(a, p.kind, p.period))
        for a in await reads.attempts_of_posting(s, posting_id, after_id)
    ]


async def load_log(
    s: Session, document_id: int, integration_id: int | None
) -> tuple[DocumentFacts, str, int, list[LogEntry]] | None:
    """A document's integration log: attempts and people's actions, newest first."""
    doc = await s.get(Document, document_id)
    if doc is None:
        return None
    integration_id = integration_id or doc.integration_id
    integration = await reads.integration_name(s, integration_id)
    by_id = {p.id: p for p in await reads.postings_of_document(s, doc.id, integration_id)}
    attempts = await reads.newest_attempts_of(s, by_id, LOG_LIMIT)
    entries = [attempt_entry(a, by_id[a.posting_id].kind, by_id[a.posting_id].period) for a in attempts]
    subjects = [f"document:{doc.id}", *(f"posting:{pid}" for pid in by_id)]
    acts = await reads.newest_actions_on(s, subjects, LOG_LIMIT, hidden_action="show_log")
    entries.extend(_activity_entry(a) for a in acts)
    entries.sort(key=lambda e: (e.at, e.action is None, e.order), reverse=True)
    return document_facts(doc), integration or "?", integration_id, entries


def _activity_entry(a: Activity) -> LogEntry:
    detail = a.detail or {}
    messages: Sequence[str] = detail.get("messages") or ([detail["message"]] if detail.get("message") else [])
    return LogEntry(
        at=a.at,
        outcome=a.outcome or "ok",
        actor=a.actor,
        action=a.action,
        message=" ".join(str(m) for m in messages) or detail.get("reason"),
        order=a.id,
    )


async def load_document_notices(s: Session, document_id: int, integration_id: int) -> list[PostingNotice]:
    """The message facts of each posting of a document in one integration (Show log's buttons)."""
    postings = sorted(await reads.postings_of_document(s, document_id, integration_id), key=lambda p: p.id)
    notices = [await load_posting_notice(s, p.id) for p in postings]
    return [n for n in notices if n is not None]
