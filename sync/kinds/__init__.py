"""The document kinds the engine turns into postings, by name.

Adding a kind is one module (``sync/kinds/<kind>.py`` with its ``KIND``) and one
line in :data:`KINDS`.
"""

from __future__ import annotations

from typing import Any

from connectors.base import PostingRequest
from sync.config import IntegrationConfig
from sync.errors import NotSendable
from sync.kinds import bill, payroll
from sync.kinds.base import DocumentKind
from sync.planner import Eligibility, PlannedPosting
from sync.vouchers import MappingLookup

KINDS: dict[str, DocumentKind] = {
    bill.KIND.name: bill.KIND,
    payroll.KIND.name: payroll.KIND,
}


class UnsupportedDocument(ValueError):
    """A document kind this version does not turn into postings yet."""

    def __init__(self, kind: str):
        super().__init__(f"documents of kind '{kind}' are not turned into postings by this version")
        self.kind = kind


def kind_of(name: str) -> DocumentKind:
    """The kind called ``name``; :class:`UnsupportedDocument` if the engine has none."""
    found = KINDS.get(name)
    if found is None:
        raise UnsupportedDocument(name)
    return found


def plan(kind: str, data: Any, rules: Eligibility, *, history: bool = False) -> list[PlannedPosting]:
    """The postings a document of ``kind`` needs."""
    return kind_of(kind).plan(data, rules, history=history)


def build_request(
    *,
    cfg: IntegrationConfig,
    lookup: MappingLookup,
    doc_kind: str,
    doc_data: dict[str, Any],
    posting_kind: str,
    period: str | None,
    key: str,
) -> PostingRequest:
    """The request for one posting of one document (its stored data validated again)."""
    kind = KINDS.get(doc_kind)
    if kind is None:
        raise NotSendable(f"A {doc_kind} has no {posting_kind} posting.", code="no_such_posting")
    return kind.request(cfg, lookup, kind.shape.model_validate(doc_data), posting_kind, period, key)
