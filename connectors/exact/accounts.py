"""Exact Online accounts (``crm/Accounts``): relation postings, and codes resolved to GUIDs.

An account carries the idempotency key in ``Remarks``. Account codes (GL accounts,
suppliers) are resolved to Exact's GUIDs once and cached for the life of the connector.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from connectors.base import NeedsPersonError, PostingRequest
from connectors.exact.entries import quote

CODE_MAX = 18

#: every row of ``GET path`` with these query parameters
GetAll = Callable[[str, Mapping[str, Any]], Awaitable[list[dict[str, Any]]]]


def account_body(request: PostingRequest) -> dict[str, Any]:
    """The debtor or creditor account of a relation posting."""
    rel = request.relation
    if rel is None:
        raise NeedsPersonError("The relation posting carries no relation.", code="incomplete")
    if len(rel.number) > CODE_MAX:
        raise NeedsPersonError(
            f"Relation number {rel.number} is longer than Exact's {CODE_MAX} characters.",
            code="code_too_long",
            field="number",
        )
    body: dict[str, Any] = {
        "Code": rel.number,
        "Name": rel.name,
        "Status": "C" if rel.type == "debtor" else "A",
        "IsSales": rel.type == "debtor",
        "IsSupplier": rel.type == "creditor",
        "Remarks": f"ledgerops {request.idempotency_key}",
    }
    optional = {
        "Email": rel.email,
        "VATNumber": rel.vat_number,
        "AddressLine1": rel.address.line1,
        "Postcode": rel.address.postal_code,
        "City": rel.address.city,
        "Country": rel.address.country,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


class AccountCodes:
    """GL account and supplier codes -> Exact's GUIDs, looked up once each."""

    def __init__(self, get_all: GetAll, division: Callable[[], Awaitable[int]]):
        self._get_all = get_all
        self._division = division
        self._gl_ids: dict[str, str] = {}
        self._supplier_ids: dict[str, str] = {}

    async def gl_account(self, code: str) -> str:
        """The GUID of GL account ``code``, or a refusal naming the administration."""
        if code not in self._gl_ids:
            rows = await self._get_all(
                "financial/GLAccounts", {"$filter": f"trim(Code) eq {quote(code)}", "$select": "ID,Code"}
            )
            if not rows:
                raise NeedsPersonError(
                    f"Account {code} does not exist in Exact Online administration {await self._division()}.",
                    code="account_not_found",
                    field="account",
                )
            self._gl_ids[code] = str(rows[0]["ID"])
        return self._gl_ids[code]

    async def supplier(self, number: str) -> str:
        """The GUID of supplier ``number``, or a refusal naming the administration."""
        if number not in self._supplier_ids:
            rows = await self._get_all(
                "crm/Accounts",
                {"$filter": f"trim(Code) eq {quote(number)} and IsSupplier eq true", "$select": "ID,Code"},
            )
            if not rows:
                raise NeedsPersonError(
                    f"Supplier {number} does not exist in Exact Online administration "
                    f"{await self._division()}.",
                    code="supplier_not_found",
                    field="supplier",
                )
            self._supplier_ids[number] = str(rows[0]["ID"])
        return self._supplier_ids[number]
