"""What the operations messages say (outage, daily digest, quota reset), as plain data.

Loaded from the database by ``bot/ops/outage.py`` and ``bot/ops/digest.py``; turned into
Block Kit by ``bot/ops/messages.py``. Nothing here does I/O. A digest is kept as
JSON in its ``job_runs`` row, so it is rebuilt the same way whenever it is sent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

#: the accounting system of each integration kind, as a finance person names it
SYSTEM_NAMES = {
    "economic": "e-conomic",
    "procountor": "Procountor",
    "exact": "Exact Online",
    "sandbox": "the sandbox ledger",
}


def system_name(kind: str) -> str:
    return SYSTEM_NAMES.get(kind, kind)


@dataclass(frozen=True)
class OutageNotice:
    """One integration's ledger unreachable (or back again)."""

    integration: str
    kind: str
    since: datetime
    waiting: int
    retry_seconds: int | None = None
    next_try_at: datetime | None = None
    last_seen: datetime | None = None
    error_code: str | None = None
    last_error: str | None = None
    recovered_at: datetime | None = None
    #: since it ended: postings sent, failed, and still being sent
    sent: int = 0
    failed: int = 0
    still_waiting: int = 0

    @property
    def status(self) -> str:
        """``down`` while it lasts, ``recovered`` after (the outbox's ``subject_status``)."""
        return "recovered" if self.recovered_at is not None else "down"


@dataclass(frozen=True)
class IntegrationDay:
    """One integration's line in the digest."""

    name: str
    kind: str
    paused: bool
    synced: int
    failed: int
    waiting: int


@dataclass(frozen=True)
class OpenGroup:
    """An open error group in the digest."""

    group_id: int
    integration: str
    title: str
    failing: int
    noun: str  # "bill" / "document", already in the right number for ``failing``


@dataclass(frozen=True)
class Digest:
    """The daily digest: since the previous one (or the last 24 hours)."""

    day: str
    since: datetime
    until: datetime
    integrations: tuple[IntegrationDay, ...] = ()
    groups: tuple[OpenGroup, ...] = ()
    more_groups: int = 0
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def paused(self) -> list[str]:
        return [i.name for i in self.integrations if i.paused]

    def to_detail(self) -> dict[str, Any]:
        """JSON for ``job_runs.detail``."""
        raw = asdict(self)
        raw["since"], raw["until"] = self.since.isoformat(), self.until.isoformat()
        return raw

    @classmethod
    def from_detail(cls, raw: dict[str, Any]) -> Digest:
        return cls(
            day=raw["day"],
            since=datetime.fromisoformat(raw["since"]),
            until=datetime.fromisoformat(raw["until"]),
            integrations=tuple(IntegrationDay(**i) for i in raw.get("integrations", [])),
            groups=tuple(OpenGroup(**g) for g in raw.get("groups", [])),
            more_groups=int(raw.get("more_groups", 0)),
            totals=dict(raw.get("totals", {})),
        )


@dataclass(frozen=True)
class QuotaNotice:
    """The monthly booking quota was reset: how many held-back postings resumed."""

    month: str
    resumed: int
