"""In-process notices that something changed, for whoever renders it (Slack, App Home).

The database stays the truth: a listener that misses a notice catches up by
reading state; notices only make it quick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """A posting (and maybe its error group) changed state.

    ``left_group_id``: the error group it failed in before and has just left (it fails
    another way now), whose message must be rebuilt too.
    """

    posting_id: int
    document_id: int
    state: str
    error_group_id: int | None = None
    left_group_id: int | None = None


Listener = Callable[[list[Change]], None]


class ChangeFeed:
    """Fan-out of :class:`Change` batches to listeners; a failing listener is logged, not raised."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def publish(self, changes: list[Change]) -> None:
        if not changes:
            return
        for listener in self._listeners:
            try:
                listener(changes)
            except Exception:  # a renderer's bug must not break syncing
                log.exception("change listener failed")


@dataclass(frozen=True)
class AttemptObserved:
    """One attempt finished: for metrics."""

    integration: str
    operation: str
    outcome: str
    seconds: float


AttemptListener = Callable[[AttemptObserved], None]
