"""What an ``UPDATE``, ``DELETE`` or plain ``INSERT`` tells back: how many rows it touched."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def rows_changed(result: Result[*tuple[Any, ...]]) -> int:
    """How many rows the write statement behind ``result`` matched (0 when none).

    A write statement's result is always a :class:`CursorResult`, but
    ``Session.execute`` is typed as returning a plain :class:`Result` whatever the
    statement, so the cast says what SQLAlchemy's own documentation says to assume.
    """
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount or 0
