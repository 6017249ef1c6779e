"""e-conomic debtors (``/customers``): the relation postings of an e-conomic agreement.

PUT replaces a whole customer, so an update starts from what the ledger holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from connectors.base import (
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RecordExistsError,
    RecordStatus,
    RelationRecord,
    UnsupportedPostingError,
)
from connectors.economic.vouchers import whole_number

#: one request to the ledger: ``(method, path, *, body=, write=, allow=)`` -> the answer's JSON
Call = Callable[..., Awaitable[Any]]


def debtor_of(request: PostingRequest) -> RelationRecord:
    """The debtor a relation posting carries; e-conomic takes no creditors here."""
    relation = request.relation
    if relation is None:
        raise NeedsPersonError("The relation posting carries no relation.", code="no_relation")
    if relation.type != "debtor":
        raise UnsupportedPostingError(f"The e-conomic connector writes debtors only, not {relation.type}s.")
    return relation


def customer_body(
    request: PostingRequest,
    relation: RelationRecord,
    defaults: Mapping[str, int],
    current: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The customer to POST (or PUT over ``current``, what the ledger holds now)."""
    body: dict[str, Any] = dict(current or {})
    pick = {**defaults, **request.extra}
    body["customerNumber"] = whole_number(relation.number, "debtor number", "number")
    body["name"] = relation.name
    body.setdefault("currency", request.currency)
    body.setdefault("customerGroup", {"customerGroupNumber": int(pick["customer_group"])})
    body.setdefault("paymentTerms", {"paymentTermsNumber": int(pick["payment_terms"])})
    body.setdefault("vatZone", {"vatZoneNumber": int(pick["vat_zone"])})
    # The API refuses null: an empty value is left out rather than sent.
    for key, value in (
        ("email", relation.email),
        ("corporateIdentificationNumber", relation.vat_number),
        ("address", relation.address.line1),
        ("zip", relation.address.postal_code),
        ("city", relation.address.city),
        ("country", relation.address.country),
    ):
        if value:
            body[key] = value
    return body


class EconomicCustomers:
    """Debtors of one agreement, written through the connector's ``call``."""

    def __init__(self, call: Call, defaults: Mapping[str, int]):
        self._call = call
        self.defaults = defaults

    async def create(self, request: PostingRequest) -> PostingResult:
        """A new debtor; a number already taken is refused as :class:`RecordExistsError`."""
        relation = debtor_of(request)
        try:
            answer = await self._call(
                "POST", "/customers", body=customer_body(request, relation, self.defaults), write=True
            )
        except NeedsPersonError as exc:
            if exc.code == "http_409" or exc.field == "customerNumber":
                raise RecordExistsError(
                    f"Debtor number {relation.number} is already in use in e-conomic ({exc.message}).",
                    field="number",
                ) from None
            raise
        number = (
            answer.get("customerNumber", relation.number) if isinstance(answer, dict) else relation.number
        )
        return PostingResult(str(number), RecordStatus.DRAFT, detail=f"debtor {number}")

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        """Replace the debtor's fields, keeping what the ledger holds beyond them."""
        relation = debtor_of(request)
        number = whole_number(external_ref, "debtor number", "number")
        current = await self._call("GET", f"/customers/{number}", allow=(404,))
        if current is None:
            raise NeedsPersonError(
                f"Debtor {number} does not exist in e-conomic.", code="not_found", field="number"
            )
        body = customer_body(request, relation, self.defaults, current)
        await self._call("PUT", f"/customers/{number}", write=True, body=body)
        return PostingResult(str(number), RecordStatus.DRAFT, detail=f"debtor {number}")

    async def delete(self, external_ref: str) -> None:
        """Delete the debtor; one already gone is done."""
        number = whole_number(external_ref, "debtor number", "number")
        await self._call("DELETE", f"/customers/{number}", write=True, allow=(404,))

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The debtor under the relation's number, if the ledger has it."""
        relation = debtor_of(request)
        if not relation.number:
            return None
        number = whole_number(relation.number, "debtor number", "number")
        found = await self._call("GET", f"/customers/{number}", allow=(404,))
        return None if found is None else PostingResult(str(number), RecordStatus.DRAFT)

    async def status(self, external_ref: str) -> RecordStatus:
        """A debtor is draft (changeable) while it exists, else missing."""
        number = whole_number(external_ref, "debtor number", "number")
        answer = await self._call("GET", f"/customers/{number}", allow=(404,))
        return RecordStatus.MISSING if answer is None else RecordStatus.DRAFT
