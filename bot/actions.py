"""Every button's action id and the value it carries, read in one place.

A button's ``value`` is small JSON naming its subject (``{"document":1,"posting":2}``):
one pydantic model per shape. Builders write it with :meth:`ButtonValue.value`
(compact, sorted keys: the string Slack stores in the message never changes);
listeners get it back with :func:`read_value`, which refuses anything that is not
exactly that shape (``ValueError``), so no listener parses by hand.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

#: Block Kit's limit on a button value
BUTTON_VALUE = 2000
#: ids are 64-bit in the database; a larger number cannot name anything of ours
LARGEST_ID = 2**63 - 1

#: a row id: a whole JSON number (not a string, a float or a bool), 0 … 2**63 - 1
RowId = Annotated[int, Field(strict=True, ge=0, le=LARGEST_ID)]


class ActionId(StrEnum):
    """Stable action ids of every button and field (documented in the README; never rename)."""

    # the channel messages about postings and error groups
    RESYNC_INVOICE = "ledgerops.resync_invoice"
    RESYNC_PAYMENT = "ledgerops.resync_payment"
    RESYNC_POSTING = "ledgerops.resync_posting"
    SHOW_LOG = "ledgerops.show_log"
    LOG_PAGE = "ledgerops.log_page"
    IGNORE = "ledgerops.ignore"
    RESYNC_GROUP = "ledgerops.resync_group"
    #: a booked voucher's change that was not sent is corrected in the ledger by a person
    MARK_HANDLED = "ledgerops.mark_handled"
    # the command answers and the App Home
    PAGE = "ledgerops.page"  # next / previous page of a long answer
    PAUSE = "ledgerops.pause"
    RESUME = "ledgerops.resume"
    CONFIRM_HISTORY = "ledgerops.confirm_history"
    BULK_FILTER = "ledgerops.bulk_filter"  # a narrowing field in the bulk resync modal (no value)
    ACTIVITY_PAGE = "ledgerops.activity_page"  # older entries of /ledger activity


class ButtonValue(BaseModel):
    """What a button names; extra keys are ignored, missing or mistyped ones refused."""

    model_config = ConfigDict(frozen=True)

    def value(self) -> str:
        """The button's ``value``: compact JSON with sorted keys."""
        raw = json.dumps(self.model_dump(), separators=(",", ":"), sort_keys=True)
        if len(raw) > BUTTON_VALUE:
            raise ValueError("button value over Block Kit's 2000 characters")
        return raw


class PostingRef(ButtonValue):
    """One posting of one document: resync invoice / payment / posting, Show log."""

    document: RowId
    posting: RowId


class PostingIdRef(ButtonValue):
    """One posting: Ignore."""

    posting: RowId


class HandledRef(ButtonValue):
    """One booked posting whose unsent change (or withdrawal) a person handled: Mark handled."""

    posting: RowId
    #: the voucher the person corrected: a button under an older voucher's message no longer works
    voucher: StrictStr


class GroupRef(ButtonValue):
    """One error group: Resync all."""

    group: RowId


class LogPageRef(ButtonValue):
    """A page of a document's integration log in one integration: Older entries."""

    document: RowId
    integration: RowId
    page: RowId


class PageRef(ButtonValue):
    """A page of a command's long answer: Previous / Next."""

    page: RowId
    cmd: StrictStr


class ActivityPageRef(ButtonValue):
    """Older entries of ``/ledger activity``: rows before ``before``, from ``since`` (ISO; "" for all)."""

    before: RowId
    page: RowId
    since: StrictStr


class IntegrationRef(ButtonValue):
    """One integration by name: Pause / Resume on the App Home."""

    integration: StrictStr


class HistoryRef(ButtonValue):
    """History of one integration from a date: Transfer."""

    integration: StrictStr
    since: StrictStr


#: the value each button carries (``BULK_FILTER`` is a modal field: the view is its value)
VALUES: dict[ActionId, type[ButtonValue]] = {
    ActionId.RESYNC_INVOICE: PostingRef,
    ActionId.RESYNC_PAYMENT: PostingRef,
    ActionId.RESYNC_POSTING: PostingRef,
    ActionId.SHOW_LOG: PostingRef,
    ActionId.LOG_PAGE: LogPageRef,
    ActionId.IGNORE: PostingIdRef,
    ActionId.RESYNC_GROUP: GroupRef,
    ActionId.MARK_HANDLED: HandledRef,
    ActionId.PAGE: PageRef,
    ActionId.ACTIVITY_PAGE: ActivityPageRef,
    ActionId.PAUSE: IntegrationRef,
    ActionId.RESUME: IntegrationRef,
    ActionId.CONFIRM_HISTORY: HistoryRef,
}


def read_value(action: ActionId, raw: str | None) -> ButtonValue:
    """The value a button of ``action`` carries; ``ValueError`` when it is not one we sent."""
    if raw is None:
        raise ValueError("button has no value")
    # pydantic's ValidationError is a ValueError: not JSON, not an object, a key missing or mistyped
    return VALUES[action].model_validate_json(raw)
