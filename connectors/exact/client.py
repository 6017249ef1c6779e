"""Exact Online REST (``/api/v1/{division}/...``) over httpx.

- Bill invoice postings are purchase entries (``purchaseentry/PurchaseEntries``),
  payroll journals general journal entries
  (``generaljournalentry/GeneralJournalEntries``), relations ``crm/Accounts``.
- OAuth2 with rotating refresh tokens kept in a :class:`~connectors.base.TokenStore`
  (:mod:`connectors.exact.tokens`); calls paced by Exact's rate-limit headers
  (:mod:`connectors.exact.rest`). The clock and the sleep are injectable so a
  time-scaled fake server and the pacing agree.

Decisions where the docs are silent:

- Booked: purchase and general journal entries carry ``Status`` (5 rejected,
  20 open, 50 processed). 20 is a draft; 50 and anything else is booked (hands
  off). A missing entry (404, or an empty result) is missing.
- The idempotency key leads the entry ``Description`` (purchase entries) or every
  line's ``Description`` (general journal entries, whose header has no text), and
  ``Remarks`` of an account; :meth:`find` searches with ``substringof`` in
  ``$filter``.
- Withdrawing deletes an open entry (``DELETE``, as the journal update does first) or
  an account; a processed entry is refused, one already gone (404) is done.
- General journal entries have no documented PUT: a draft is updated by deleting
  it and posting it again (its reference changes). Should that second write be
  lost, :meth:`update` finds the new entry by its key.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from connectors.base import (
    BookedError,
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RecordExistsError,
    RecordStatus,
    TokenStore,
    UnsupportedPostingError,
)
from connectors.exact.accounts import AccountCodes, account_body
from connectors.exact.entries import (
    check_journal,
    check_purchase,
    entry_result,
    entry_status,
    journal_body,
    purchase_body,
    quote,
)
from connectors.exact.rest import ExactRest
from connectors.exact.tokens import ExactSignIn
from connectors.http import RatePacer

DEFAULT_BASE_URL = "https://start.exactonline.nl"
SUPPORTED = frozenset({"invoice", "journal", "relation"})
DEFAULT_PURCHASE_JOURNAL = "60"
DEFAULT_GENERAL_JOURNAL = "90"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class ExactConnector:
    """One Exact Online administration (division).

    ``token_store`` keeps the rotating refresh token (and the linked division);
    the runtime passes one backed by the database (``storage.credentials``).
    """

    kind = "exact"

    def __init__(
        self,
        name: str,
        *,
        client_id: str,
        client_secret: str,
        token_store: TokenStore,
        division: int | None = None,
        refresh_token: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        purchase_journal: str = DEFAULT_PURCHASE_JOURNAL,
        general_journal: str = DEFAULT_GENERAL_JOURNAL,
        timeout: float = 20.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = 20.0,
        reset_margin: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.name = name
        self._store = token_store
        self._division = division
        self.purchase_journal = purchase_journal
        self.general_journal = general_journal
        self.pacer = RatePacer(clock, sleep, max_wait=max_wait, margin=reset_margin)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport
        )
        self.sign_in = ExactSignIn(
            name,
            self._http,
            client_id=client_id,
            client_secret=client_secret,
            store=token_store,
            refresh_token=refresh_token,
            clock=clock,
            division=lambda: self._division,
        )
        self._rest = ExactRest(
            self._http, name=name, sign_in=self.sign_in, pacer=self.pacer, clock=clock, division=self.division
        )
        self._codes = AccountCodes(self._rest.get_all, self.division)

    def __repr__(self) -> str:
        return f"ExactConnector(name={self.name!r}, division={self._division!r})"

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any]) -> ExactConnector:
        """Build from an integration's resolved settings.

        Keys: ``client_id``, ``client_secret`` (required), ``division``,
        ``refresh_token`` (only needed until the first rotation is stored),
        ``base_url``, optional ``purchase_journal`` / ``general_journal`` codes, and
        ``token_store``: a :class:`connectors.base.TokenStore` the runtime must
        pass (``storage.credentials.DatabaseTokenStore``); without one a rotated
        refresh token would be lost at the next restart, so building fails.
        """
        missing = [k for k in ("client_id", "client_secret") if not settings.get(k)]
        if missing:
            raise ValueError(f"integrations[{name}]: Exact Online needs {', '.join(missing)}")
        store = settings.get("token_store")
        if store is None:
            raise ValueError(
                f"integrations[{name}]: the Exact Online connector needs a token store "
                "(settings['token_store']) to keep its rotating refresh token"
            )
        division = settings.get("division")
        return cls(
            name,
            client_id=str(settings["client_id"]),
            client_secret=str(settings["client_secret"]),
            token_store=store,
            division=int(division) if division is not None else None,
            refresh_token=settings.get("refresh_token"),
            base_url=str(settings.get("base_url") or DEFAULT_BASE_URL),
            purchase_journal=str(settings.get("purchase_journal") or DEFAULT_PURCHASE_JOURNAL),
            general_journal=str(settings.get("general_journal") or DEFAULT_GENERAL_JOURNAL),
        )

    # -- Connector protocol ------------------------------------------------------------
    def supports(self, posting_kind: str) -> bool:
        """Bill invoices, journals and relations."""
        return posting_kind in SUPPORTED

    async def create(self, request: PostingRequest) -> PostingResult:
        """POST a purchase entry, general journal entry or account."""
        if request.kind == "invoice":
            body = await self._purchase_body(request)
            data = await self._rest.created("purchaseentry/PurchaseEntries", body, "EntryID")
            return entry_result(data, "purchase entry")
        if request.kind == "journal":
            body = await self._journal_body(request)
            data = await self._rest.created("generaljournalentry/GeneralJournalEntries", body, "EntryID")
            return entry_result(data, "journal entry")
        if request.kind == "relation":
            return await self._create_account(request)
        raise UnsupportedPostingError(f"Exact Online cannot take {request.kind} postings here.")

    async def update(self, external_ref: str, request: PostingRequest) -> PostingResult:
        """Change a draft; refuse a processed (booked) entry."""
        if request.kind == "invoice":
            return await self._update_purchase(external_ref, request)
        if request.kind == "journal":
            return await self._update_journal(external_ref, request)
        if request.kind == "relation":
            body = account_body(request)
            await self._rest.write("PUT", f"crm/Accounts(guid'{external_ref}')", body)
            return PostingResult(external_ref, RecordStatus.DRAFT, detail="account")
        raise UnsupportedPostingError(f"Exact Online cannot take {request.kind} postings here.")

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        """DELETE an open entry (or an account); refuse a processed one; gone (404) is done."""
        if request.kind == "relation":
            await self._rest.send("DELETE", f"crm/Accounts(guid'{external_ref}')", write=True, allow_404=True)
            return
        if request.kind == "invoice":
            path = f"purchaseentry/PurchaseEntries(guid'{external_ref}')"
            entry = await self._rest.get_one(path, {"$select": "EntryID,EntryNumber,Status"})
            what = "Purchase entry"
        elif request.kind == "journal":
            entry, what = await self._journal_entry(external_ref, request), "Journal entry"
        else:
            raise UnsupportedPostingError(f"Exact Online cannot take {request.kind} postings here.")
        if entry is None:
            return
        if entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"{what} {entry.get('EntryNumber', external_ref)} is processed in Exact Online "
                "and cannot be deleted."
            )
        await self._delete_entry(request.kind, str(entry["EntryID"]))

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The record carrying the idempotency key, looked up with ``$filter``."""
        key = quote(request.idempotency_key)
        if request.kind == "invoice":
            rows = await self._rest.get_all(
                "purchaseentry/PurchaseEntries",
                {
                    "$filter": f"substringof({key},Description) eq true",
                    "$select": "EntryID,EntryNumber,Status",
                },
            )
            return entry_result(rows[0], "purchase entry") if rows else None
        if request.kind == "journal":
            return await self._find_journal(request.idempotency_key)
        if request.kind == "relation":
            assert request.relation is not None
            rows = await self._rest.get_all(
                "crm/Accounts",
                {
                    "$filter": f"trim(Code) eq {quote(request.relation.number)} "
                    f"and substringof({key},Remarks) eq true",
                    "$select": "ID,Code",
                },
            )
            return PostingResult(rows[0]["ID"], RecordStatus.DRAFT, detail="account") if rows else None
        return None

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        """Open (20) -> draft; processed (50) or other -> booked; not found -> missing."""
        if request.kind == "relation":
            row = await self._rest.get_one(f"crm/Accounts(guid'{external_ref}')", {"$select": "ID"})
            return RecordStatus.MISSING if row is None else RecordStatus.DRAFT
        if request.kind == "journal":
            entry = await self._journal_entry(external_ref, request)
            return RecordStatus.MISSING if entry is None else entry_status(entry)
        row = await self._rest.get_one(
            f"purchaseentry/PurchaseEntries(guid'{external_ref}')", {"$select": "EntryID,Status"}
        )
        return RecordStatus.MISSING if row is None else entry_status(row)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- XML upload ----------------------------------------------------------------------
    async def upload_xml(self, topic: str, xml: bytes) -> str:
        """POST an eExact file to ``/docs/XMLUpload.aspx``; returns the XML answer.

        ``connectors.exact.exact_xml.parse_upload_answer`` turns it into per-row outcomes.
        The upload counts against the same allowance as REST calls.
        """
        division = await self.division()
        resp = await self._rest.send(
            "POST",
            "docs/XMLUpload.aspx",
            params={"Topic": topic, "_Division_": division},
            content=xml,
            content_type="application/xml",
            write=True,
        )
        assert resp is not None
        return resp.text

    async def division(self) -> int:
        """The configured division, or the one ``connect`` stored."""
        if self._division is None:
            stored = await self._store.get("division")
            if not stored:
                raise NeedsPersonError(
                    f"No Exact Online administration is linked to {self.name}; run "
                    f"`python app.py connect {self.name}`.",
                    code="not_linked",
                )
            self._division = int(stored)
        return self._division

    # -- purchase entries ----------------------------------------------------------------
    async def _purchase_body(self, request: PostingRequest) -> dict[str, Any]:
        account, supplier = check_purchase(request)
        gl_account = await self._codes.gl_account(account)
        return purchase_body(
            request,
            journal=self.purchase_journal,
            gl_account=gl_account,
            supplier=await self._codes.supplier(supplier),
        )

    async def _update_purchase(self, ref: str, request: PostingRequest) -> PostingResult:
        path = f"purchaseentry/PurchaseEntries(guid'{ref}')"
        entry = await self._rest.get_one(path, {"$expand": "PurchaseEntryLines"})
        if entry is None:
            raise NeedsPersonError(
                f"Purchase entry {ref} no longer exists in Exact Online.", code="not_found"
            )
        if entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"Purchase entry {entry.get('EntryNumber', ref)} is processed in "
                "Exact Online and cannot be changed."
            )
        body = await self._purchase_body(request)
        line = body.pop("PurchaseEntryLines")[0]
        body.pop("Journal")  # the journal of an existing entry cannot change
        lines = (entry.get("PurchaseEntryLines") or {}).get("results") or []
        await self._rest.write("PUT", path, body)
        if lines:
            await self._rest.write("PUT", f"purchaseentry/PurchaseEntryLines(guid'{lines[0]['ID']}')", line)
        else:
            await self._rest.write("POST", "purchaseentry/PurchaseEntryLines", dict(line, EntryID=ref))
        return PostingResult(
            ref, RecordStatus.DRAFT, detail=f"purchase entry {entry.get('EntryNumber', '')}".strip()
        )

    # -- general journal entries ---------------------------------------------------------
    async def _journal_body(self, request: PostingRequest) -> dict[str, Any]:
        check_journal(request)
        gl_accounts: dict[str, str] = {}
        for line in request.lines:  # looked up in line order, as the refusal names the first
            gl_accounts[line.account] = await self._codes.gl_account(line.account)
        return journal_body(request, journal=self.general_journal, gl_accounts=gl_accounts)

    async def _journal_entry(self, ref: str, request: PostingRequest) -> dict[str, Any] | None:
        """The entry by reference, or (after a lost re-post) by idempotency key."""
        entry = await self._rest.get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{ref}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )
        if entry is not None:
            return entry
        found = await self._find_journal(request.idempotency_key)
        if found is None:
            return None
        return await self._rest.get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{found.external_ref}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )

    async def _find_journal(self, key: str) -> PostingResult | None:
        rows = await self._rest.get_all(
            "generaljournalentry/GeneralJournalEntryLines",
            {"$filter": f"substringof({quote(key)},Description) eq true", "$select": "EntryID"},
        )
        if not rows:
            return None
        entry = await self._rest.get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{rows[0]['EntryID']}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )
        return None if entry is None else entry_result(entry, "journal entry")

    async def _update_journal(self, ref: str, request: PostingRequest) -> PostingResult:
        entry = await self._journal_entry(ref, request)
        if entry is None:
            raise NeedsPersonError(f"Journal entry {ref} no longer exists in Exact Online.", code="not_found")
        if entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"Journal entry {entry.get('EntryNumber', ref)} is processed in "
                "Exact Online and cannot be changed."
            )
        body = await self._journal_body(request)  # refuse bad content before deleting
        await self._delete_entry("journal", str(entry["EntryID"]))
        data = await self._rest.created("generaljournalentry/GeneralJournalEntries", body, "EntryID")
        return entry_result(data, "journal entry")

    async def _delete_entry(self, kind: str, entry_id: str) -> None:
        """DELETE an open entry; one already gone (a lost answer, retried) is fine."""
        path = {
            "invoice": "purchaseentry/PurchaseEntries",
            "journal": "generaljournalentry/GeneralJournalEntries",
        }
        await self._rest.send("DELETE", f"{path[kind]}(guid'{entry_id}')", write=True, allow_404=True)

    # -- accounts (relations) ------------------------------------------------------------
    async def _create_account(self, request: PostingRequest) -> PostingResult:
        body = account_body(request)
        existing = await self._rest.get_all(
            "crm/Accounts", {"$filter": f"trim(Code) eq {quote(body['Code'])}", "$select": "ID,Code"}
        )
        if existing:
            raise RecordExistsError(
                f"Account code {body['Code']} is already in use in Exact Online.", field="number"
            )
        data = await self._rest.created("crm/Accounts", body, "ID")
        return PostingResult(str(data["ID"]), RecordStatus.DRAFT, detail=f"account {body['Code']}")
