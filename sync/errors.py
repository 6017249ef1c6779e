"""Failure taxonomy: what went wrong, in terms of what happens next."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connectors.base import (
    BookedError,
    ConnectorError,
    RateLimitedError,
    TransientError,
    UnknownOutcomeError,
)


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # try again later, on its own
    NEEDS_PERSON = "needs_person"  # a person must fix something first
    BOOKED = "booked"  # the record is booked: never change it, never create it again
    UNCERTAIN = "uncertain"  # we do not know whether the write happened: look before writing


@dataclass(frozen=True)
class Failure:
    """A classified failure, with the ledger's own text."""

    kind: FailureKind
    code: str
    message: str
    retry_after: float | None = None
    #: the ledger's allowance ran out: not a sign the posting is broken, so it never
    #: counts towards giving up
    rate_limited: bool = False
    #: what the failure is for, by structure: ``(mapping kind, source value)`` of a missing
    #: mapping, so setting that mapping queues exactly its postings again
    cause: tuple[str, str] | None = None


class MappingMissing(Exception):
    """The integration has no ledger number for a source value (category, department …)."""

    def __init__(self, what: str, value: str, integration: str):
        self.what, self.value, self.integration = what, value, integration
        super().__init__(
            f"The {what} '{value}' has no account mapping in {integration}. "
            f'Map it (/ledger map {what} "{value}" <number>) and resync.'
        )


#: codes of the reasons ledgerops gives itself, the ledger never asked (a :class:`NotSendable`'s
#: code must be one of them, so a message can tell whose words a failure is by its code)
OWN_CODES = frozenset(
    {"no_such_posting", "not_paid", "no_payment_account", "test_company", "no_config", "gave_up"}
)
#: refusals no resync can change: the document itself says it is not to be booked
REFUSED_CODES = frozenset({"test_company"})
#: a missing mapping's code is this prefix and the mapping kind (``unmapped_category``)
UNMAPPED = "unmapped_"


#: no answer came from the ledger (not reached, no answer in time, cut off, unreadable):
#: the text is ledgerops' own description, never "the ledger says"
NO_ANSWER_CODES = frozenset({"unreachable", "timeout", "connection_lost", "unreadable_answer"})


def ledger_did_not_answer(code: str | None) -> bool:
    """Whether a failure with this code is the ledger's silence, described by ledgerops."""
    return code in NO_ANSWER_CODES


def said_by_ledgerops(code: str | None) -> bool:
    """Whether a failure with this code is ledgerops' own reason, not the ledger's answer."""
    return code is not None and (code in OWN_CODES or code.startswith(UNMAPPED))


def resync_cannot_help(code: str | None) -> bool:
    """A refusal only a change of the document can lift: a resync would be refused again."""
    return code in REFUSED_CODES


class NotSendable(Exception):
    """A posting that cannot be sent for a reason a person must resolve (ledgerops' own)."""

    def __init__(self, message: str, code: str):
        if code not in OWN_CODES:
            raise ValueError(f"NotSendable code {code!r} is not in sync.errors.OWN_CODES")
        super().__init__(message)
        self.message, self.code = message, code


def classify(exc: BaseException, *, during_write: bool) -> Failure:
    """Turn anything raised while syncing into a :class:`Failure`, by one rule for writes.

    During a create or update the outcome is known only when nothing can have been
    written (``ConnectorError.outcome_known``: a definite refusal, or a request that
    provably never left). Anything else — any 5xx, a read timeout, a reset, an error no
    connector classified — is UNCERTAIN: the next try looks the record up by its
    idempotency key before writing again. Outside a write nothing can be doubled, so
    the same failures are only transient.
    """
    if isinstance(exc, MappingMissing):
        return Failure(
            FailureKind.NEEDS_PERSON, f"{UNMAPPED}{exc.what}", str(exc), cause=(exc.what, exc.value)
        )
    if isinstance(exc, NotSendable):
        return Failure(FailureKind.NEEDS_PERSON, exc.code, exc.message)
    if isinstance(exc, BookedError):
        return Failure(FailureKind.BOOKED, exc.code, exc.message)
    if during_write and not getattr(exc, "outcome_known", False):
        return _uncertain(exc)
    if isinstance(exc, UnknownOutcomeError):
        return Failure(FailureKind.UNCERTAIN, exc.code, exc.message)
    if isinstance(exc, TransientError):
        return Failure(
            FailureKind.TRANSIENT,
            exc.code,
            exc.message,
            exc.retry_after,
            rate_limited=isinstance(exc, RateLimitedError),
        )
    if isinstance(exc, ConnectorError):  # NeedsPersonError and anything else a connector names
        return Failure(FailureKind.NEEDS_PERSON, exc.code, exc.message)
    if isinstance(exc, TimeoutError):
        return Failure(FailureKind.TRANSIENT, "timeout", "The ledger did not answer in time.")
    return Failure(FailureKind.TRANSIENT, "internal", f"Unexpected error: {type(exc).__name__}")


def _uncertain(exc: BaseException) -> Failure:
    """A write whose outcome is unknown, in the words of whatever was raised."""
    if isinstance(exc, ConnectorError):
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return Failure(FailureKind.UNCERTAIN, exc.code, exc.message, retry_after)
    if isinstance(exc, TimeoutError):
        return Failure(FailureKind.UNCERTAIN, "timeout", "The ledger did not answer in time.")
    # A bug or an unexpected library error: never assume the write did not happen.
    return Failure(FailureKind.UNCERTAIN, "internal", f"Unexpected error: {type(exc).__name__}")
