"""Which document a person means: what the messages show (``INV-1005``), a document id,
``kind:id`` or ``source/kind/id``; near misses get "did you mean"."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from storage.db import Session
from storage.models import Document
from storage.queries import lookup
from sync.kinds import KINDS

#: how many recent documents "did you mean" compares with
CANDIDATES = 5000

#: what a person may type for a kind: ``bill``, ``payroll`` (for payroll_run), ``order``
KIND_WORDS = {"payroll": "payroll_run", "run": "payroll_run", "payroll-run": "payroll_run"}


@dataclass(frozen=True)
class Found:
    """The documents a reference names (one is the answer), or near misses when none."""

    documents: list[Document] = field(default_factory=list)
    suggestions: list[str] = field(default_factory=list)


def exact_form(doc: Document) -> str:
    """The reference that names exactly this document: ``source/kind/id``."""
    return f"{doc.source}/{doc.kind}/{doc.external_id}"


def summary(doc: Document) -> str:
    """One line a person recognises: ``Kontorland A/S · INV-1005 · 1,250.00 DKK``."""
    kind = KINDS.get(doc.kind)
    if kind is not None:
        return kind.summary(doc.data, doc.external_id)
    return f"{doc.kind.replace('_', ' ')} {doc.external_id}"


def _split(ref: str) -> tuple[str | None, str | None, str]:
    """``(source, kind, name)`` of ``source/kind/id``, ``kind:id`` or a bare name."""
    if ref.count("/") == 2:
        source, kind, name = ref.split("/")
        return source, kind, name
    kind, sep, name = ref.partition(":")
    if sep and kind and name and not kind[0].isdigit():
        return None, KIND_WORDS.get(kind.lower(), kind.lower()), name
    return None, None, ref


async def find_document(s: Session, ref: str, limit: int = 10) -> Found:
    """The documents ``ref`` names; none: the closest names among recent documents."""
    ref = ref.strip()
    source, kind, name = _split(ref)
    docs = await lookup.documents_named(s, name, kind=kind, source=source, limit=limit)
    if not docs and (source or kind):
        # "bill:INV-1005" or a kind the person spelled differently: the name alone
        docs = await lookup.documents_named(s, name, limit=limit)
    if docs:
        return Found(docs)
    names = await lookup.recent_names(s, limit=CANDIDATES)
    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.7)
    return Found([], [by_lower[c] for c in close])
