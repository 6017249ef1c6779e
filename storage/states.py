"""The finance vocabulary stored in the database, as string enums.

They live in storage so every layer (sync, bot, handlers) can share them
without importing upwards.
"""

from __future__ import annotations

from enum import StrEnum


class PostingState(StrEnum):
    """Where a posting is in its life (DESIGN.md section 4)."""

    WAITING = "waiting"
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    RETRYING = "retrying"
    SYNCED = "synced"
    FAILED = "failed"
    BOOKED = "booked"
    IGNORED = "ignored"
    #: the document no longer needs it: nothing of it is left in the ledger
    WITHDRAWN = "withdrawn"


#: States in which nothing more will happen on its own.
SETTLED_STATES = (PostingState.SYNCED, PostingState.BOOKED, PostingState.IGNORED, PostingState.WITHDRAWN)


class PostingKind(StrEnum):
    """The records a document needs in the accounting system."""

    INVOICE = "invoice"
    PAYMENT = "payment"
    SALE = "sale"
    CREDIT_NOTE = "credit_note"
    PAYOUT = "payout"
    JOURNAL = "journal"
    RELATION = "relation"


class Trigger(StrEnum):
    """Why an attempt ran."""

    AUTO = "auto"
    MANUAL = "manual"
    BULK = "bulk"
    RETRY = "retry"
    #: the document changed: its postings are brought in line with the new version
    CHANGE = "change"
    SWEEPER = "sweeper"


class Operation(StrEnum):
    """What an attempt asked of the accounting system."""

    CREATE = "create"
    UPDATE = "update"
    LOOKUP = "lookup"
    DELETE = "delete"
    NONE = "none"


class Outcome(StrEnum):
    """How an attempt ended."""

    SYNCED = "synced"
    RETRYING = "retrying"
    FAILED = "failed"
    BOOKED = "booked"
    UNCERTAIN = "uncertain"
    REFUSED = "refused"
    #: the record the document no longer needs is gone from the ledger (or never got there)
    WITHDRAWN = "withdrawn"


class RelationAction(StrEnum):
    """Insert a new debtor/creditor or update the existing one."""

    INSERT = "insert"
    UPDATE = "update"


class MessageState(StrEnum):
    """Outbox state of a Slack message."""

    TO_POST = "to_post"
    POSTED = "posted"
    TO_UPDATE = "to_update"
    #: a chat.postMessage is on its way; should the process die now, its outcome is unknown
    SENDING = "sending"
    #: a post whose outcome is unknown (timeout, dropped connection): never repeated blindly
    UNCONFIRMED = "unconfirmed"
