"""Documents and their postings as ingest, a person's resync and bulk resync read them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Document, Posting

#: a natural key: (source, kind, external id)
DocumentKey = tuple[str, str, str]
#: keys per locking read, document ids per postings read (bound parameters stay few)
KEY_CHUNK, ID_CHUNK = 300, 500


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def lock_documents(s: AsyncSession, keys: Sequence[DocumentKey]) -> dict[DocumentKey, Document]:
    """The stored documents of these natural keys, locked (``FOR UPDATE`` on PostgreSQL).

    Locked in one order for every batch, code point order like Python's sort, so two
    batches that share documents wait for each other instead of deadlocking, and a
    newer version is never overwritten.
    """
    ordered = sorted(set(keys))
    key = (Document.source, Document.kind, Document.external_id)
    sqlite = s.get_bind().dialect.name == "sqlite"
    order = key if sqlite else tuple(c.collate("C") for c in key)
    found: dict[DocumentKey, Document] = {}
    for chunk in _chunks(ordered, KEY_CHUNK):
        stmt = select(Document).where(tuple_(*key).in_(chunk)).order_by(*order).with_for_update()
        for doc in (await s.scalars(stmt)).all():
            found[(doc.source, doc.kind, doc.external_id)] = doc
    return found


async def postings_of_documents(s: AsyncSession, document_ids: Sequence[int]) -> list[Posting]:
    """Every posting of these documents (read a chunk of ids at a time)."""
    found: list[Posting] = []
    for chunk in _chunks(document_ids, ID_CHUNK):
        found.extend(await s.scalars(select(Posting).where(Posting.document_id.in_(chunk))))
    return found


async def postings_of_document(s: AsyncSession, document_id: int) -> list[Posting]:
    """Every posting of one document."""
    return list((await s.scalars(select(Posting).where(Posting.document_id == document_id))).all())


async def document_by_key(s: AsyncSession, source: str, kind: str, external_id: str) -> Document | None:
    """The document of that natural key (``None``: none)."""
    return (
        await s.scalars(
            select(Document).where(
                Document.source == source,
                Document.kind == kind,
                Document.external_id == external_id,
            )
        )
    ).one_or_none()


@dataclass(frozen=True)
class PostingSelection:
    """The postings a bulk resync looks at: in ``states``, and optionally narrowed."""

    states: tuple[str, ...]
    integration_id: int | None = None
    error_group_id: int | None = None
    since: date | None = None
    until: date | None = None
    document_ids: tuple[int, ...] | None = None


def _document_ids(sel: PostingSelection) -> Any:
    stmt = select(Posting.document_id).where(Posting.state.in_(sel.states))
    if sel.integration_id is not None:
        stmt = stmt.where(Posting.integration_id == sel.integration_id)
    if sel.error_group_id is not None:
        stmt = stmt.where(Posting.error_group_id == sel.error_group_id)
    if sel.since or sel.until or sel.document_ids is not None:
        stmt = stmt.join(Document, Document.id == Posting.document_id)
        if sel.since:
            stmt = stmt.where(Document.doc_date >= sel.since)
        if sel.until:
            stmt = stmt.where(Document.doc_date <= sel.until)
        if sel.document_ids is not None:
            stmt = stmt.where(Document.id.in_(sel.document_ids))
    return stmt


async def selected_documents(
    s: AsyncSession, sel: PostingSelection, *, after_id: int | None = None, limit: int
) -> list[Document]:
    """Up to ``limit`` documents with a selected posting, id order, past ``after_id``."""
    stmt = select(Document)
    if after_id is not None:
        stmt = stmt.where(Document.id > after_id)
    stmt = stmt.where(Document.id.in_(_document_ids(sel))).order_by(Document.id).limit(limit)
    return list((await s.scalars(stmt)).all())


async def count_selected_documents(s: AsyncSession, sel: PostingSelection) -> int:
    """How many documents have a selected posting."""
    sub = _document_ids(sel).subquery()
    return int(await s.scalar(select(func.count(func.distinct(sub.c.document_id)))) or 0)
