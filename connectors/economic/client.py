"""Visma e-conomic over its REST API (https://restapi.e-conomic.com).

A bill becomes one voucher in the configured journal (kassekladde): the invoice
posting as a ``supplierInvoices`` entry, the payment posting as a
``supplierPayments`` entry with the bank (``payment_account``) as contra account.
The server assigns the voucher number; ``external_ref`` is ``"{year}-{number}"``
and the journal stays implicit (it comes from the settings).

Facts from the public docs (repository e-conomic/slate, ``_journals.md`` and
``_introduction.md``) and decisions where they are silent:

* Sign of ``amount``. The REST journal has no debit/credit switch, only a signed
  amount that, like a finance voucher's, debits the entry's own account when
  positive and credits it when negative; the entry's own account of a supplier
  entry is the supplier. e-copedia's supplier-invoice line is pre-set to
  *credit* (the invoice is owed to the supplier), so an invoice is sent
  **negative** (credit the supplier, debit the expense contra account) and a
  payment **positive** (debit the supplier, credit the bank). The docs' examples
  only show ``100`` for both, so this is our reading, not a quoted rule.
* The idempotency key is kept in the entry ``text`` as ``"<text> [LO-…]"``
  (at most 250 characters). Which properties of the journal's voucher
  collection are filterable is not documented, and a journal only holds drafts,
  so :meth:`EconomicConnector.find` pages through it; booked entries (a whole
  year) are searched with ``filter=text$like:KEY`` and, if the ledger refuses
  that filter (400), with ``date$eq:`` of the document's date.
* There is no PUT for a legacy voucher: a draft is changed by deleting its
  entries and posting again with the same ``voucher.voucherNumber``.
* Withdrawing a draft voucher deletes its entries, as an update does first (a debtor:
  ``DELETE /customers/{n}``); a booked voucher is refused, one already gone is done.
* A voucher no longer in the journal but found under
  ``/accounting-years/{year}/entries`` (by voucher number) is booked.
* The accounting year is the calendar year of the posting date; an agreement
  whose financial year is not a calendar year ("2025/2026") is not handled yet.

Credentials live only in the HTTP client's default headers: never in messages,
logs or reprs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any

import httpx

from connectors.base import (
    AuthenticationError,
    BookedError,
    ConnectorError,
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RecordStatus,
    TransientError,
    UnsupportedPostingError,
    decode_json,
)
from connectors.economic.customers import EconomicCustomers
from connectors.economic.refusals import rejection
from connectors.economic.vouchers import (
    entries_of,
    filter_value,
    key_marker,
    path_segment,
    split_ref,
    voucher_body,
)
from connectors.http import LedgerHttp, Refusal

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://restapi.e-conomic.com"
PAGE_SIZE = 1000  # the largest page the API serves
MAX_PAGES = 1000  # a runaway guard, far above any journal we expect
SUPPORTED = frozenset({"invoice", "payment", "relation"})


# -- the connector -------------------------------------------------------------------------
class EconomicConnector:
    """The :class:`connectors.base.Connector` for one e-conomic agreement and journal."""

    kind = "economic"

    def __init__(
        self,
        *,
        name: str = "economic",
        app_secret_token: str,
        agreement_grant_token: str,
        base_url: str = DEFAULT_BASE_URL,
        journal: int = 1,
        payment_account: int | str | None = None,
        fee_account: int | str | None = None,
        timeout: float = 15.0,
        customer_defaults: Mapping[str, int] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if not app_secret_token or not agreement_grant_token:
            raise ValueError(
                f"integrations[{name}]: e-conomic needs app_secret_token and agreement_grant_token"
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.journal = int(journal)
        self.payment_account = str(payment_account) if payment_account is not None else None
        self.fee_account = str(fee_account) if fee_account is not None else None
        self.timeout = timeout
        # POST /customers requires a group, payment terms and a VAT zone; the config has no
        # keys for them yet, so a request's ``extra`` may carry them, else these defaults.
        self.customer_defaults = {
            "customer_group": 1,
            "payment_terms": 1,
            "vat_zone": 1,
            **(customer_defaults or {}),
        }
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={
                "X-AppSecretToken": app_secret_token,
                "X-AgreementGrantToken": agreement_grant_token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )
        self._customers = EconomicCustomers(self._call, self.customer_defaults)
        # Any 5xx after a write (503 too: it may come from behind the point where the voucher
        # was saved) is an unknown outcome; connectors.http applies that rule.
        self._api = LedgerHttp(
            self._http, system="e-conomic", record="voucher", name=name, own_failure=self._own_failure
        )

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> EconomicConnector:
        """Build from an integration's resolved settings (tokens already read from env)."""
        return cls(
            name=name,
            base_url=settings.get("base_url") or DEFAULT_BASE_URL,
            app_secret_token=settings.get("app_secret_token") or "",
            agreement_grant_token=settings.get("agreement_grant_token") or "",
            journal=int(settings.get("journal") or 1),
            payment_account=settings.get("payment_account"),
            fee_account=settings.get("fee_account"),
        )

    def __repr__(self) -> str:
        return f"EconomicConnector(name={self.name!r}, base_url={self.base_url!r}, journal={self.journal})"

    def supports(self, posting_kind: str) -> bool:
        """Supplier invoices, supplier payments and debtors."""
        return posting_kind in SUPPORTED

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    # -- the protocol ------------------------------------------------------------------------
    async def create(self, request: PostingRequest) -> PostingResult:
        """Post a new voucher (the ledger numbers it), or a new debtor."""
        self._check_kind(request)
        if request.kind == "relation":
            return await self._customers.create(request)
        answer = await self._call(
            "POST", f"/journals/{self.journal}/vouchers", body=self._voucher(request), write=True
        )
        return self._created(answer, request)

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        """Replace a draft voucher's entries, keeping its number; refuse a booked one."""
        self._check_kind(request)
        if request.kind == "relation":
            return await self._customers.update(external_ref, request)
        year, number = split_ref(external_ref)
        # Built first: a request we would refuse ourselves must not cost the old entries.
        body = voucher_body(
            request, journal=self.journal, payment_account=self.payment_account, voucher_number=number
        )
        voucher = await self._draft_or_refuse(year, number, "changed")
        if voucher is None:
            raise NeedsPersonError(
                f"Voucher {external_ref} is no longer in journal "
                f"{self.journal} and was not booked; it may have been deleted "
                "in e-conomic.",
                code="not_found",
            )
        await self._delete_entries(voucher)
        try:
            answer = await self._call("POST", f"/journals/{self.journal}/vouchers", body=body, write=True)
        except NeedsPersonError as exc:
            # A lost answer is repaired by the next try (status: missing -> create; found ->
            # update again); a refusal is not, so the person must hear the draft is gone.
            raise NeedsPersonError(
                f"{exc.message} (The old entries of voucher {external_ref} were already removed; "
                "fix this and resync to post it again.)",
                code=exc.code,
                field=exc.field,
            ) from None
        return self._created(answer, request)

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        """Delete a draft voucher's entries (or a debtor); refuse a booked one; gone is done."""
        self._check_kind(request)
        if request.kind == "relation":
            await self._customers.delete(external_ref)
            return
        voucher = await self._draft_or_refuse(*split_ref(external_ref), "deleted")
        if voucher is not None:
            await self._delete_entries(voucher)

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The voucher (draft or booked) whose entry text carries the idempotency key."""
        if request.kind == "relation":
            return await self._customers.find(request)
        marker = key_marker(request.idempotency_key)
        async with aclosing(self._pages(f"/journals/{self.journal}/vouchers")) as vouchers:
            async for voucher in vouchers:
                if any(marker in str(e.get("text") or "") for e in entries_of(voucher)):
                    year = (voucher.get("accountingYear") or {}).get("year") or request.date.year
                    return PostingResult(f"{year}-{voucher['voucherNumber']}", RecordStatus.DRAFT)
        year = str(request.date.year)
        for entry in await self._booked_with_key(year, request):
            return PostingResult(f"{year}-{entry['voucherNumber']}", RecordStatus.BOOKED)
        return None

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        """Draft while in the journal, booked once in the year's entries, else missing."""
        if request.kind == "relation":
            return await self._customers.status(external_ref)
        year, number = split_ref(external_ref)
        if await self._draft_voucher(year, number) is not None:
            return RecordStatus.DRAFT
        if await self._booked_voucher(year, number):
            return RecordStatus.BOOKED
        return RecordStatus.MISSING

    # -- vouchers ----------------------------------------------------------------------------
    def _voucher(self, request: PostingRequest) -> dict[str, Any]:
        return voucher_body(request, journal=self.journal, payment_account=self.payment_account)

    def _check_kind(self, request: PostingRequest) -> None:
        if request.kind not in SUPPORTED:
            raise UnsupportedPostingError(
                f"The e-conomic connector cannot take {request.kind.replace('_', ' ')} postings."
            )

    def _created(self, answer: Any, request: PostingRequest) -> PostingResult:
        voucher = answer[0] if isinstance(answer, list) and answer else answer
        if not isinstance(voucher, Mapping) or "voucherNumber" not in voucher:
            # Saved, but we cannot tell which voucher it is: look it up by key next time.
            raise self._api.lost("its answer did not say the voucher number")
        year = str((voucher.get("accountingYear") or {}).get("year") or request.date.year)
        number = voucher["voucherNumber"]
        return PostingResult(f"{year}-{number}", RecordStatus.DRAFT, detail=f"voucher {number}")

    async def _draft_voucher(self, year: str, number: int) -> dict[str, Any] | None:
        path = f"/journals/{self.journal}/vouchers/{path_segment(year)}-{number}"
        voucher = await self._call("GET", path, allow=(404,))
        # A voucher without entries is nothing a person could book: treat it as gone.
        return voucher if isinstance(voucher, dict) and entries_of(voucher) else None

    async def _draft_or_refuse(self, year: str, number: int, change: str) -> dict[str, Any] | None:
        """The draft voucher; :class:`BookedError` when booked; ``None`` when it is gone."""
        voucher = await self._draft_voucher(year, number)
        if voucher is None and await self._booked_voucher(year, number):
            raise BookedError(f"Voucher {year}-{number} is booked in e-conomic and cannot be {change}.")
        return voucher

    async def _delete_entries(self, voucher: Mapping[str, Any]) -> None:
        # One DELETE per entry; an entry already gone (a lost answer, retried) is fine.
        for entry in entries_of(voucher):
            entry_number = entry.get("journalEntryNumber")
            if entry_number is not None:
                await self._call(
                    "DELETE", f"/journals/{self.journal}/entries/{entry_number}", write=True, allow=(404,)
                )

    async def _booked_voucher(self, year: str, number: int) -> bool:
        # By number only, as the API offers: a same-numbered voucher of another journal would
        # read as booked too, which errs towards never creating a duplicate.
        entries = self._pages(
            f"/accounting-years/{path_segment(year)}/entries",
            filter=f"voucherNumber$eq:{number}",
            missing_ok=True,
        )
        async with aclosing(entries):
            async for _entry in entries:
                return True
        return False

    async def _booked_with_key(self, year: str, request: PostingRequest) -> list[dict[str, Any]]:
        marker = key_marker(request.idempotency_key)
        path = f"/accounting-years/{path_segment(year)}/entries"
        try:
            return [
                entry
                async for entry in self._pages(
                    path, filter=f"text$like:{filter_value(request.idempotency_key)}", missing_ok=True
                )
                if marker in str(entry.get("text") or "")
            ]
        except NeedsPersonError as exc:
            if not exc.code.startswith(("validation", "http_400")):
                raise
        # The ledger would not filter on text: the document's own day is a small page.
        log.info("e-conomic refused a text filter; searching by date", extra={"year": year})
        return [
            entry
            async for entry in self._pages(
                path, filter=f"date$eq:{request.date.isoformat()}", missing_ok=True
            )
            if marker in str(entry.get("text") or "")
        ]

    async def _pages(
        self, path: str, *, filter: str | None = None, missing_ok: bool = False
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Every item of a collection, page by page (``skippages`` / ``pagesize``)."""
        for page in range(MAX_PAGES):
            params: dict[str, Any] = {"skippages": page, "pagesize": PAGE_SIZE}
            if filter:
                params["filter"] = filter
            answer = await self._call("GET", path, params=params, allow=(404,) if missing_ok else ())
            if answer is None:
                return
            items = answer.get("collection") or []
            for item in items:
                yield item
            if not items or not (answer.get("pagination") or {}).get("nextPage"):
                return
        raise TransientError(
            f"e-conomic kept returning pages of {path}; stopped after {MAX_PAGES}.", code="too_many_pages"
        )

    # -- debtors -----------------------------------------------------------------------------
    # -- HTTP --------------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        write: bool = False,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """One request; the answer's JSON, ``None`` for an allowed status, or a typed error."""
        response = await self._api.send(method, path, params=params, body=body, write=write, allow=allow)
        return None if response is None else self._api.read(response, write=write)

    def _own_failure(self, response: httpx.Response, refusal: Refusal, write: bool) -> ConnectorError | None:
        """e-conomic's 4xx: our words for 401/403 (they name the fix, never a token), else its own."""
        if refusal.status == 429:
            return None  # the shared RateLimitedError with Retry-After
        if refusal.status == 401:
            return AuthenticationError(
                f"e-conomic refused the credentials of {self.name} (401). Renew the app secret "
                "token / agreement grant token in the environment.",
                code="http_401",
            )
        if refusal.status == 403:
            return AuthenticationError(
                f"e-conomic denied {self.name} access (403): the agreement grant does not allow "
                "this. Check the app's roles in e-conomic or renew the grant.",
                code="http_403",
            )
        try:
            body = decode_json(response.content)
        except ValueError:
            body = None
        return rejection(body, refusal.status)
