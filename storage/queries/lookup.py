"""Finding documents by the numbers people see: invoice, order and run numbers, ids
(``sync/lookup.py``)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Document

#: the fields of a document's data that name it for people (bill, order, payroll run)
NUMBER_FIELDS = ("invoice_number", "number", "run")


def _numbers() -> list[ColumnElement[str]]:
    return [func.lower(Document.data[f].as_string()) for f in NUMBER_FIELDS]


async def documents_named(
    s: AsyncSession, name: str, *, kind: str | None = None, source: str | None = None, limit: int
) -> list[Document]:
    """Documents whose id or number is ``name`` (any case), oldest first."""
    wanted = name.lower()
    stmt = select(Document).where(
        or_(func.lower(Document.external_id) == wanted, *(n == wanted for n in _numbers()))
    )
    if kind is not None:
        stmt = stmt.where(Document.kind == kind)
    if source is not None:
        stmt = stmt.where(Document.source == source)
    return list((await s.scalars(stmt.order_by(Document.id).limit(limit))).all())


async def recent_names(s: AsyncSession, *, kind: str | None = None, limit: int) -> list[str]:
    """Ids and numbers of the newest ``limit`` documents: the candidates for "did you mean"."""
    stmt = select(Document.external_id, *(Document.data[f].as_string() for f in NUMBER_FIELDS))
    if kind is not None:
        stmt = stmt.where(Document.kind == kind)
    rows = (await s.execute(stmt.order_by(Document.id.desc()).limit(limit))).all()
    return [str(v) for row in rows for v in row if v]
