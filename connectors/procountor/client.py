"""Procountor REST (https://api.procountor.com/latest/api) over httpx.

Everything is written as a ledger receipt of type ``JOURNAL`` (``POST
/ledgerreceipts``, status ``UNFINISHED``): payroll journals line by line, a bill's
invoice posting as expense debit / creditor credit, its payment posting as
creditor debit / bank credit. Receipt types other than JOURNAL cannot be created
through ``/ledgerreceipts`` (Procountor's help centre: "Receipt types cannot be
changed nor set ... nor through Procountor API"), and a real ``PURCHASE_INVOICE``
needs ``POST /invoices`` with counter-party, payment and VAT data ledgerops does
not have, so bills stay journals here.

Facts the public docs leave open, and what this module does about them:

- ``GET /ledgerreceipts`` filters only by date range, type, status and paging
  (``previousId``); there is no filter on the receipt name. :meth:`find` pages
  through the JOURNAL receipts of the request's date and reads each receipt's
  ``name`` (and ``accountantsNotes``), which carry the idempotency key.
- ``UNFINISHED`` is a draft; ``APPROVED``, ``INVALIDATED`` and anything else are
  treated as booked (hands off: never changed, never created again), except a
  receipt ledgerops itself withdrew, which is missing.
- The API deletes no ledger receipt; ``PUT /ledgerreceipts/{id}/invalidate`` takes
  one out of the books (open period, JOURNAL only). :meth:`delete` first writes
  :data:`WITHDRAWN_NOTE` into its ``accountantsNotes`` (a versioned PUT), then
  invalidates it, so a receipt we withdrew is told from one a person voided.
- A 403 whose error names a test company or a blocked group is a
  :class:`NeedsPersonError` with code ``test_company`` / ``blocked_group``; nothing
  retries it.
- A 409 on a versioned update (someone saved the receipt after we read it) is a
  definite refusal: nothing was written, so it is retried without a lookup (the
  next try reads the new version first).

Credentials (client secret, API key, access token) never appear in logs,
messages or reprs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connectors.base import (
    AuthenticationError,
    BookedError,
    JournalLine,
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RecordStatus,
    TransientError,
    decode_json,
)
from connectors.http import LedgerHttp
from connectors.procountor.procountor_refusals import own_failure, refusal_text
from connectors.procountor.receipts import (
    SUPPORTED,
    WITHDRAWN_NOTE,
    carries,
    check_balanced,
    receipt_body,
    receipt_lines,
    receipt_status,
    withdrawn,
)

DEFAULT_BASE_URL = "https://api.procountor.com/latest/api"
#: Finnish standard chart: 2871 "Ostovelat" (trade creditors); override with ``creditor_account``.
DEFAULT_CREDITOR_ACCOUNT = "2871"
PAGE_SIZE = 50
#: renew the access token this many seconds before Procountor says it expires
TOKEN_MARGIN = 60.0


class ProcountorConnector:
    """One Procountor company (the API key selects it)."""

    kind = "procountor"

    def __init__(
        self,
        name: str,
        *,
        client_id: str,
        client_secret: str,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        redirect_uri: str = "",
        dimensions: Mapping[str, int] | None = None,
        creditor_account: str = DEFAULT_CREDITOR_ACCOUNT,
        company_currency: str = "EUR",
        timeout: float = 20.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.name = name
        self._client_id = client_id
        self._client_secret = client_secret
        self._api_key = api_key
        self._redirect_uri = redirect_uri
        self.dimensions = {str(k): int(v) for k, v in (dimensions or {}).items()}
        self.creditor_account = str(creditor_account)
        self.company_currency = company_currency
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport
        )
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = asyncio.Lock()
        self._dimension_items: dict[int, dict[str, int]] | None = None
        self._api = LedgerHttp(
            self._http,
            system="Procountor",
            record="receipt",
            name=name,
            read_refusal=refusal_text,
            own_failure=own_failure,
            token=self._access_token,
            forget_token=self._forget_token,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"ProcountorConnector(name={self.name!r}, base_url={str(self._http.base_url)!r})"

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> ProcountorConnector:
        """Build from an integration's resolved settings (CONTRACT.md, Procountor keys).

        Reads ``client_id``, ``client_secret``, ``api_key`` (required), ``base_url``,
        ``redirect_uri``, ``dimensions`` ({"cost_center": dimensionId, ...}) and the
        optional ``creditor_account`` / ``company_currency``.
        """
        missing = [k for k in ("client_id", "client_secret", "api_key") if not settings.get(k)]
        if missing:
            raise ValueError(f"integrations[{name}]: Procountor needs {', '.join(missing)}")
        return cls(
            name,
            client_id=str(settings["client_id"]),
            client_secret=str(settings["client_secret"]),
            api_key=str(settings["api_key"]),
            base_url=str(settings.get("base_url") or DEFAULT_BASE_URL),
            redirect_uri=str(settings.get("redirect_uri") or ""),
            dimensions=settings.get("dimensions") or {},
            creditor_account=str(settings.get("creditor_account") or DEFAULT_CREDITOR_ACCOUNT),
            company_currency=str(settings.get("company_currency") or "EUR"),
        )

    # -- Connector protocol ------------------------------------------------------------
    def supports(self, posting_kind: str) -> bool:
        """Invoice, payment and journal postings (all as JOURNAL receipts)."""
        return posting_kind in SUPPORTED

    async def create(self, request: PostingRequest) -> PostingResult:
        """POST a new UNFINISHED journal receipt; Procountor assigns its id."""
        body = await self._receipt_body(request)
        resp = await self._call("POST", "ledgerreceipts", body=body, write=True)
        data = self._api.read(resp, write=True)
        found = (data.get("receiptId") or data.get("id")) if isinstance(data, dict) else None
        ref = str(found) if found else None  # Procountor numbers receipts; a reference is text
        if not ref:
            raise self._api.lost("its answer did not say the receipt id")
        return PostingResult(ref, RecordStatus.DRAFT, detail=f"ledger receipt {ref}")

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        """PUT the receipt with its current ``version`` (read first); refuse when booked."""
        current = await self._get_receipt(external_ref)
        if current is None:
            raise NeedsPersonError(
                f"Ledger receipt {external_ref} no longer exists in Procountor.", code="not_found"
            )
        if receipt_status(current) is RecordStatus.BOOKED:
            raise BookedError(
                f"Ledger receipt {external_ref} is {str(current.get('status')).lower()} in "
                "Procountor and cannot be changed."
            )
        body = await self._receipt_body(request)
        body["receiptId"] = current.get("receiptId", external_ref)
        body["version"] = current.get("version")
        await self._call("PUT", f"ledgerreceipts/{external_ref}", body=body, write=True)
        return PostingResult(external_ref, RecordStatus.DRAFT, detail=f"ledger receipt {external_ref}")

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        """Mark a draft receipt withdrawn and invalidate it; refuse a booked one; gone is done."""
        current = await self._get_receipt(external_ref)
        status = RecordStatus.MISSING if current is None else receipt_status(current)
        if current is None or status is RecordStatus.MISSING:
            return
        if status is RecordStatus.BOOKED:
            raise BookedError(
                f"Ledger receipt {external_ref} is {str(current.get('status')).lower()} in "
                "Procountor and cannot be deleted."
            )
        if not withdrawn(current):
            # The whole receipt as read, with its version: a 409 means it changed meanwhile.
            notes = f"{current.get('accountantsNotes') or ''} {WITHDRAWN_NOTE}".strip()
            body = dict(current, accountantsNotes=notes)
            await self._call("PUT", f"ledgerreceipts/{external_ref}", body=body, write=True)
        await self._call("PUT", f"ledgerreceipts/{external_ref}/invalidate", write=True)

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The receipt whose name (or notes) carries the idempotency key.

        The API has no name filter: page through the JOURNAL receipts of the
        request's date and read each one (see the module docstring).
        """
        day = request.date.isoformat()
        previous: str | None = None
        fallback: PostingResult | None = None
        while True:
            params: dict[str, Any] = {
                "startDate": day,
                "endDate": day,
                "types": "JOURNAL",
                "orderById": "asc",
                "size": PAGE_SIZE,
            }
            if previous is not None:
                params["previousId"] = previous
            resp = await self._call("GET", "ledgerreceipts", params=params)
            results = (decode_json(resp.text) or {}).get("results") or []
            for item in results:
                ref = str(item.get("receiptId") or item.get("id"))
                receipt = item if "name" in item else await self._get_receipt(ref)
                if receipt is None or not carries(receipt, request.idempotency_key):
                    continue
                result = PostingResult(ref, receipt_status(receipt), detail=f"ledger receipt {ref}")
                if result.status is RecordStatus.MISSING:
                    continue  # withdrawn by us: out of the books
                if receipt.get("status") != "INVALIDATED":
                    return result
                fallback = fallback or result  # only an invalidated one: hands off
            if len(results) < PAGE_SIZE:
                return fallback
            previous = str(results[-1].get("receiptId") or results[-1].get("id"))

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        """UNFINISHED -> draft; withdrawn by us or 404 -> missing; anything else -> booked."""
        receipt = await self._get_receipt(external_ref)
        return RecordStatus.MISSING if receipt is None else receipt_status(receipt)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- receipts ----------------------------------------------------------------------
    async def _get_receipt(self, ref: str) -> dict[str, Any] | None:
        resp = await self._api.send("GET", f"ledgerreceipts/{ref}", allow=(404,))
        return None if resp is None else (decode_json(resp.text) or {})

    async def _receipt_body(self, request: PostingRequest) -> dict[str, Any]:
        lines = receipt_lines(
            request, creditor_account=self.creditor_account, company_currency=self.company_currency
        )
        check_balanced(lines)
        dimension_values = [await self._dimension_values(line) for line in lines]
        return receipt_body(request, lines, dimension_values)

    async def _dimension_values(self, line: JournalLine) -> list[dict[str, Any]]:
        """The line's dimensions (cost_center ...) as Procountor dimension item values.

        Only dimensions named in the integration's ``dimensions`` setting are sent;
        a company that does not use a dimension simply leaves it out of the setting.
        """
        values: list[dict[str, Any]] = []
        for what, item_name in line.dimensions.items():
            dimension_id = self.dimensions.get(what)
            if dimension_id is None or not item_name:
                continue
            items = (await self._dimensions()).get(dimension_id)
            if items is None:
                raise NeedsPersonError(
                    f"Procountor has no dimension {dimension_id} (configured for {what}); "
                    "check the integration's dimensions setting.",
                    code="dimension_not_found",
                    field=what,
                )
            item_id = items.get(str(item_name))
            if item_id is None:
                raise NeedsPersonError(
                    f"{what.replace('_', ' ').capitalize()} '{item_name}' is not an item of "
                    f"Procountor dimension {dimension_id}.",
                    code="dimension_item_not_found",
                    field=what,
                )
            values.append({"dimensionId": dimension_id, "itemId": item_id, "value": line.amount})
        return values

    async def _dimensions(self) -> dict[int, dict[str, int]]:
        """dimensionId -> {item codeName or id: itemId}, read once per connector."""
        if self._dimension_items is None:
            resp = await self._call("GET", "dimensions")
            table: dict[int, dict[str, int]] = {}
            for dim in decode_json(resp.text) or []:
                items: dict[str, int] = {}
                for item in dim.get("items") or []:
                    items[str(item.get("codeName"))] = int(item["id"])
                    items.setdefault(str(item["id"]), int(item["id"]))
                table[int(dim["id"])] = items
            self._dimension_items = table
        return self._dimension_items

    # -- HTTP --------------------------------------------------------------------------
    async def _access_token(self) -> str:
        """The cached token, or a new one when it is missing or about to expire."""
        if self._token and self._clock() < self._token_expires - TOKEN_MARGIN:
            return self._token
        async with self._token_lock:
            if self._token and self._clock() < self._token_expires - TOKEN_MARGIN:
                return self._token
            form = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "redirect_uri": self._redirect_uri,
                "api_key": self._api_key,
            }
            try:
                resp = await self._http.post("oauth/token", data=form)
            except httpx.TransportError as exc:
                # Signing in comes before the write it serves: that write was never sent.
                raise TransientError(
                    f"Could not reach Procountor to sign in ({type(exc).__name__}).",
                    code="unreachable",
                    nothing_written=True,
                ) from None
            if resp.status_code in (400, 401, 403):
                raise AuthenticationError(
                    f"Procountor refused the client credentials or API key of {self.name}; "
                    "renew them in the environment."
                )
            if resp.status_code >= 300:
                raise TransientError(
                    f"Procountor sign-in failed ({resp.status_code}).",
                    code=f"http_{resp.status_code}",
                    nothing_written=True,
                )
            data = decode_json(resp.text) or {}
            token = data.get("access_token")
            if not token:
                raise TransientError(
                    "Procountor sign-in answered without an access token.",
                    code="bad_token_answer",
                    nothing_written=True,
                )
            self._token = str(token)
            self._token_expires = self._clock() + int(data.get("expires_in") or 3600)
            return self._token

    def _forget_token(self, token: str) -> None:
        if self._token == token:
            self._token = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        write: bool = False,
    ) -> httpx.Response:
        """One API call that must succeed (the shared classifier; a 401 renews the token once)."""
        resp = await self._api.send(method, path, params=params, body=body, write=write)
        assert resp is not None
        return resp
