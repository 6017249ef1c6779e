"""Which message shows a posting that needs a person: its own, or its error group's.

A posting needs a person when it failed, or when it is booked with a change the
ledger refused. A failed posting is shown by its error group's message when the
group already has one, or when two or more postings of the group fail
("37 bills: Account 2800 does not exist."); otherwise by a message of its own.
The outbox (``bot/outbox/coverage.py`` when a posting changes, ``bot/rendering.py`` just
before posting) asks :func:`needs_own_message`.
"""

from __future__ import annotations

from storage.db import Session
from storage.queries.groups import failing_in_group
from storage.states import PostingState

#: postings failing in one error group from which the group's message shows them all
GROUP_FROM = 2


def needs_person(state: str, last_error: str | None) -> bool:
    """Failed, or booked with a change the ledger refused: a person must look."""
    return state == PostingState.FAILED or (state == PostingState.BOOKED and bool(last_error))


def showing_group(state: str, error_group_id: int | None) -> int | None:
    """The error group whose message may show the posting: a failed posting's, else none
    (a booked posting's refused change is its own story)."""
    return error_group_id if state == PostingState.FAILED else None


async def needs_own_message(
    s: Session,
    state: str,
    last_error: str | None,
    error_group_id: int | None,
    *,
    group_has_message: bool,
) -> bool | None:
    """Whether the posting gets a message of its own.

    ``None``: it needs no message (no person needed). ``False``: its error group's
    message shows it (``group_has_message``, or two or more of the group fail right
    now; counted only when needed). ``True``: its own message.
    """
    if not needs_person(state, last_error):
        return None
    gid = showing_group(state, error_group_id)
    if gid is None:
        return True
    if group_has_message:
        return False
    return await failing_in_group(s, gid) < GROUP_FROM
