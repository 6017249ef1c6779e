"""Pure: what every kind's plan is made of (``sync/kinds/`` plans each kind).

No I/O. Each planned posting carries the hash of exactly the fields the ledger
record is made of, so a change to anything else (say, a note the source keeps)
does not send an update, and a change to, e.g., a bill's amount, category,
department or due date does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class Eligibility:
    """Whether an integration sends on its own, and from which date."""

    auto_transfer: bool = True
    history_start: date | None = None
    ready_statuses: tuple[str, ...] = ("paid", "completed")


@dataclass(frozen=True)
class PlannedPosting:
    """A posting the document needs, with the hash of what it should say."""

    kind: str
    desired_hash: str
    #: ``None`` when it may be sent now, else why it waits (shown to people)
    wait_reason: str | None = None
    #: ``journal`` postings: the period they book in
    period: str | None = None
    #: the slot of the posting of the same document that must be in the ledger first (a
    #: payment's invoice); the worker never claims this one before that one is synced
    #: (``storage.queries.postings.waits_for_dependency``), whatever queued it
    depends_on: str | None = None

    @property
    def slot(self) -> str:
        """The posting's key within its document (kind, plus period for journals)."""
        return f"{self.kind}:{self.period}" if self.period else self.kind


def content_hash(fields: dict[str, Any]) -> str:
    """A stable hash of the fields a ledger record is made of."""
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dependency_wait(depends_on: str) -> str:
    """What a person reads about a posting that waits for another of its document."""
    return f"waiting for the {depends_on.split(':', 1)[0].replace('_', ' ')} posting"


def wait_reason(rules: Eligibility, doc_date: date | None, *, history: bool = False) -> str | None:
    """Why a document's postings may not be sent on their own yet."""
    if rules.history_start and doc_date and doc_date < rules.history_start and not history:
        return f"dated before the history start {rules.history_start.isoformat()}"
    if not rules.auto_transfer:
        return "automatic transfer is off for this integration"
    return None
