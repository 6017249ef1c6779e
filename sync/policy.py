"""Backoff, give-up and grouping fingerprints."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped; give up after ``max_attempts``."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 12

    def delay(
        self, attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after the ``attempts``-th failed try (1-based)."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        spread = raw * self.jitter
        delay = raw + (rng or random).uniform(-spread, spread)
        if retry_after is not None:
            # The ledger said when; never earlier than that.
            delay = max(retry_after, min(delay, retry_after + spread))
        return max(0.0, min(delay, self.max_seconds * (1 + self.jitter)))

    def bounds(self, attempts: int) -> tuple[float, float]:
        """The smallest and largest delay :meth:`delay` may return (for tests and docs)."""
        raw = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return raw * (1 - self.jitter), raw * (1 + self.jitter)

    def next_attempt(self, now: datetime, attempts: int, retry_after: float | None = None) -> datetime:
        return now + timedelta(seconds=self.delay(attempts, retry_after=retry_after))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


_SPACE = re.compile(r"\s+")


def normalise(message: str, document_values: tuple[str, ...] = ()) -> str:
    """The message with this document's own values taken out, so similar failures group."""
    text = message
    for value in document_values:
        if value and len(value) >= 3:
            text = text.replace(value, "#")
    return _SPACE.sub(" ", text).strip().lower()


def fingerprint(integration: str, code: str, message: str, document_values: tuple[str, ...] = ()) -> str:
    """Integration + error code + normalised message."""
    raw = f"{integration}\x1f{code}\x1f{normalise(message, document_values)}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]
