"""Exact Online REST (``/api/v1/{division}/...``) over httpx.

- Bill invoice postings are purchase entries (``purchaseentry/PurchaseEntries``),
  payroll journals general journal entries
  (``generaljournalentry/GeneralJournalEntries``), relations ``crm/Accounts``.
- OAuth2 with rotating refresh tokens. The refresh token comes from the settings
  the first time and from the :class:`~connectors.base.TokenStore` after that;
  every rotated refresh token is written to the store *before* the access token
  it came with is used, so a restart (or a second replica) never holds a dead
  token. Access tokens (10 minutes) are reused until shortly before expiry, so
  a new one is requested at most about every ten minutes.
- Calls are paced by the ``X-RateLimit-Minutely-*`` and ``X-RateLimit-*`` headers
  (60 a minute, 5,000 a day per company): when the remaining count reaches 0 the
  next call waits for the reset instead of provoking a 429. The clock and the
  sleep are injectable so a time-scaled fake server and this pacing agree.

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
- Account codes (GL accounts, suppliers) are resolved to Exact's GUIDs once and
  cached for the life of the connector.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from connectors.base import (
    AuthenticationError,
    BookedError,
    ConnectorError,
    NeedsPersonError,
    PostingRequest,
    PostingResult,
    RateLimitedError,
    RecordExistsError,
    RecordStatus,
    TokenStore,
    TransientError,
    UnsupportedPostingError,
    decode_json,
)
from connectors.http import LedgerHttp, RatePacer, Refusal

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://start.exactonline.nl"
SUPPORTED = frozenset({"invoice", "journal", "relation"})
DEFAULT_PURCHASE_JOURNAL = "60"
DEFAULT_GENERAL_JOURNAL = "90"
# Not published as such; the fake server enforces the same so truncation is tested.
DESCRIPTION_MAX = 60
YOUR_REF_MAX = 30
CODE_MAX = 18
#: request a new access token this long before the old one expires
ACCESS_MARGIN = 30.0
STATUS_OPEN = 20
#: the entity an entry of each posting kind is
ENTRIES = {"invoice": "purchaseentry/PurchaseEntries", "journal": "generaljournalentry/GeneralJournalEntries"}

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

__all__ = ["ExactConnector", "RatePacer"]


def _quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _keyed(key: str, text: str) -> str:
    """The key first, so cutting to the field's length never loses it."""
    return f"{key} {text}".strip()[:DESCRIPTION_MAX]


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
        self._client_id = client_id
        self._client_secret = client_secret
        self._store = token_store
        self._division = division
        self._initial_refresh_token = refresh_token
        self.purchase_journal = purchase_journal
        self.general_journal = general_journal
        self._clock = clock
        self.pacer = RatePacer(clock, sleep, max_wait=max_wait, margin=reset_margin)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", timeout=timeout, transport=transport
        )
        self._access: str | None = None
        self._access_expires = 0.0
        self._refresh: str | None = None  # the newest refresh token we know of
        # a rotation whose refresh token is not yet stored: (refresh, access, expires)
        self._unsaved: tuple[str, str, float] | None = None
        self._token_lock = asyncio.Lock()
        self._gl_ids: dict[str, str] = {}
        self._supplier_ids: dict[str, str] = {}
        self.token_refreshes = 0
        self._api = LedgerHttp(
            self._http,
            system="Exact Online",
            record="entry",
            name=name,
            read_refusal=_error_text,
            own_failure=self._own_failure,
            token=self._access_token,
            forget_token=self._forget_access,
            before_call=self.pacer.before_call,
            after_answer=self.pacer.update,
            headers={"Accept": "application/json", "Prefer": "return=representation"},
        )

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
            data = await self._created("purchaseentry/PurchaseEntries", body, "EntryID")
            return self._entry_result(data, "purchase entry")
        if request.kind == "journal":
            body = await self._journal_body(request)
            data = await self._created("generaljournalentry/GeneralJournalEntries", body, "EntryID")
            return self._entry_result(data, "journal entry")
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
            body = self._account_body(request)
            await self._write("PUT", f"crm/Accounts(guid'{external_ref}')", body)
            return PostingResult(external_ref, RecordStatus.DRAFT, detail="account")
        raise UnsupportedPostingError(f"Exact Online cannot take {request.kind} postings here.")

    async def delete(self, external_ref: str, request: PostingRequest) -> None:
        """DELETE an open entry (or an account); refuse a processed one; gone (404) is done."""
        if request.kind == "relation":
            await self._send("DELETE", f"crm/Accounts(guid'{external_ref}')", write=True, allow_404=True)
            return
        if request.kind == "invoice":
            path = f"purchaseentry/PurchaseEntries(guid'{external_ref}')"
            entry = await self._get_one(path, {"$select": "EntryID,EntryNumber,Status"})
            what = "Purchase entry"
        elif request.kind == "journal":
            entry, what = await self._journal_entry(external_ref, request), "Journal entry"
        else:
            raise UnsupportedPostingError(f"Exact Online cannot take {request.kind} postings here.")
        if entry is None:
            return
        if _entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"{what} {entry.get('EntryNumber', external_ref)} is processed in Exact Online "
                "and cannot be deleted."
            )
        await self._delete_entry(request.kind, str(entry["EntryID"]))

    async def find(self, request: PostingRequest) -> PostingResult | None:
        """The record carrying the idempotency key, looked up with ``$filter``."""
        key = _quote(request.idempotency_key)
        if request.kind == "invoice":
            rows = await self._get_all(
                "purchaseentry/PurchaseEntries",
                {
                    "$filter": f"substringof({key},Description) eq true",
                    "$select": "EntryID,EntryNumber,Status",
                },
            )
            return self._entry_result(rows[0], "purchase entry") if rows else None
        if request.kind == "journal":
            return await self._find_journal(request.idempotency_key)
        if request.kind == "relation":
            assert request.relation is not None
            rows = await self._get_all(
                "crm/Accounts",
                {
                    "$filter": f"trim(Code) eq {_quote(request.relation.number)} "
                    f"and substringof({key},Remarks) eq true",
                    "$select": "ID,Code",
                },
            )
            return PostingResult(rows[0]["ID"], RecordStatus.DRAFT, detail="account") if rows else None
        return None

    async def status(self, external_ref: str, request: PostingRequest) -> RecordStatus:
        """Open (20) -> draft; processed (50) or other -> booked; not found -> missing."""
        if request.kind == "relation":
            row = await self._get_one(f"crm/Accounts(guid'{external_ref}')", {"$select": "ID"})
            return RecordStatus.MISSING if row is None else RecordStatus.DRAFT
        if request.kind == "journal":
            entry = await self._journal_entry(external_ref, request)
            return RecordStatus.MISSING if entry is None else _entry_status(entry)
        row = await self._get_one(
            f"purchaseentry/PurchaseEntries(guid'{external_ref}')", {"$select": "EntryID,Status"}
        )
        return RecordStatus.MISSING if row is None else _entry_status(row)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- XML upload ----------------------------------------------------------------------
    async def upload_xml(self, topic: str, xml: bytes) -> str:
        """POST an eExact file to ``/docs/XMLUpload.aspx``; returns the XML answer.

        ``connectors.exact_xml.parse_upload_answer`` turns it into per-row outcomes.
        The upload counts against the same allowance as REST calls.
        """
        division = await self.division()
        resp = await self._send(
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
        if request.amount <= 0:
            raise NeedsPersonError("Amount must be greater than zero.", code="invalid_amount", field="amount")
        if not request.account or request.supplier is None:
            raise NeedsPersonError(
                "A purchase entry needs an account and a supplier.", code="incomplete", field="account"
            )
        line: dict[str, Any] = {
            "GLAccount": await self._gl_account(request.account),
            "AmountFC": request.amount,
            "Description": request.text[:DESCRIPTION_MAX],
        }
        if request.department:
            line["CostCenter"] = request.department
        body: dict[str, Any] = {
            "Journal": self.purchase_journal,
            "Supplier": await self._supplier(request.supplier.number),
            "EntryDate": request.date.isoformat(),
            "Currency": request.currency,
            "Description": _keyed(request.idempotency_key, request.text),
            "YourRef": request.reference[:YOUR_REF_MAX],
            "PurchaseEntryLines": [line],
        }
        if request.due_date:
            body["DueDate"] = request.due_date.isoformat()
        return body

    async def _update_purchase(self, ref: str, request: PostingRequest) -> PostingResult:
        path = f"purchaseentry/PurchaseEntries(guid'{ref}')"
        entry = await self._get_one(path, {"$expand": "PurchaseEntryLines"})
        if entry is None:
            raise NeedsPersonError(
                f"Purchase entry {ref} no longer exists in Exact Online.", code="not_found"
            )
        if _entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"Purchase entry {entry.get('EntryNumber', ref)} is processed in "
                "Exact Online and cannot be changed."
            )
        body = await self._purchase_body(request)
        line = body.pop("PurchaseEntryLines")[0]
        body.pop("Journal")  # the journal of an existing entry cannot change
        lines = (entry.get("PurchaseEntryLines") or {}).get("results") or []
        await self._write("PUT", path, body)
        if lines:
            await self._write("PUT", f"purchaseentry/PurchaseEntryLines(guid'{lines[0]['ID']}')", line)
        else:
            await self._write("POST", "purchaseentry/PurchaseEntryLines", dict(line, EntryID=ref))
        return PostingResult(
            ref, RecordStatus.DRAFT, detail=f"purchase entry {entry.get('EntryNumber', '')}".strip()
        )

    # -- general journal entries ---------------------------------------------------------
    async def _journal_body(self, request: PostingRequest) -> dict[str, Any]:
        if not request.lines:
            raise NeedsPersonError("The journal has no lines.", code="empty_journal")
        total = sum((line.amount for line in request.lines), Decimal(0))
        if total != 0:
            raise NeedsPersonError(
                f"The journal does not balance: its lines sum to {total}.", code="unbalanced"
            )
        lines = []
        for line in request.lines:
            row: dict[str, Any] = {
                "GLAccount": await self._gl_account(line.account),
                "AmountFC": line.amount,
                "Date": request.date.isoformat(),
                "Description": _keyed(request.idempotency_key, line.text or request.text),
            }
            if line.dimensions.get("cost_center"):
                row["CostCenter"] = line.dimensions["cost_center"]
            if line.dimensions.get("cost_unit"):
                row["CostUnit"] = line.dimensions["cost_unit"]
            lines.append(row)
        body: dict[str, Any] = {"JournalCode": self.general_journal, "GeneralJournalEntryLines": lines}
        # Book in the period the lines concern (a calendar financial year is assumed).
        year, month = (request.period or request.date.strftime("%Y-%m")).split("-")
        body["FinancialYear"], body["FinancialPeriod"] = int(year), int(month)
        return body

    async def _journal_entry(self, ref: str, request: PostingRequest) -> dict[str, Any] | None:
        """The entry by reference, or (after a lost re-post) by idempotency key."""
        entry = await self._get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{ref}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )
        if entry is not None:
            return entry
        found = await self._find_journal(request.idempotency_key)
        if found is None:
            return None
        return await self._get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{found.external_ref}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )

    async def _find_journal(self, key: str) -> PostingResult | None:
        rows = await self._get_all(
            "generaljournalentry/GeneralJournalEntryLines",
            {"$filter": f"substringof({_quote(key)},Description) eq true", "$select": "EntryID"},
        )
        if not rows:
            return None
        entry = await self._get_one(
            f"generaljournalentry/GeneralJournalEntries(guid'{rows[0]['EntryID']}')",
            {"$select": "EntryID,EntryNumber,Status"},
        )
        return None if entry is None else self._entry_result(entry, "journal entry")

    async def _update_journal(self, ref: str, request: PostingRequest) -> PostingResult:
        entry = await self._journal_entry(ref, request)
        if entry is None:
            raise NeedsPersonError(f"Journal entry {ref} no longer exists in Exact Online.", code="not_found")
        if _entry_status(entry) is RecordStatus.BOOKED:
            raise BookedError(
                f"Journal entry {entry.get('EntryNumber', ref)} is processed in "
                "Exact Online and cannot be changed."
            )
        body = await self._journal_body(request)  # refuse bad content before deleting
        await self._delete_entry("journal", str(entry["EntryID"]))
        data = await self._created("generaljournalentry/GeneralJournalEntries", body, "EntryID")
        return self._entry_result(data, "journal entry")

    async def _delete_entry(self, kind: str, entry_id: str) -> None:
        """DELETE an open entry; one already gone (a lost answer, retried) is fine."""
        path = {
            "invoice": "purchaseentry/PurchaseEntries",
            "journal": "generaljournalentry/GeneralJournalEntries",
        }
        await self._send("DELETE", f"{path[kind]}(guid'{entry_id}')", write=True, allow_404=True)

    # -- accounts (relations) ------------------------------------------------------------
    def _account_body(self, request: PostingRequest) -> dict[str, Any]:
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

    async def _create_account(self, request: PostingRequest) -> PostingResult:
        body = self._account_body(request)
        existing = await self._get_all(
            "crm/Accounts", {"$filter": f"trim(Code) eq {_quote(body['Code'])}", "$select": "ID,Code"}
        )
        if existing:
            raise RecordExistsError(
                f"Account code {body['Code']} is already in use in Exact Online.", field="number"
            )
        data = await self._created("crm/Accounts", body, "ID")
        return PostingResult(str(data["ID"]), RecordStatus.DRAFT, detail=f"account {body['Code']}")

    # -- code -> GUID --------------------------------------------------------------------
    async def _gl_account(self, code: str) -> str:
        if code not in self._gl_ids:
            rows = await self._get_all(
                "financial/GLAccounts", {"$filter": f"trim(Code) eq {_quote(code)}", "$select": "ID,Code"}
            )
            if not rows:
                raise NeedsPersonError(
                    f"Account {code} does not exist in Exact Online administration {await self.division()}.",
                    code="account_not_found",
                    field="account",
                )
            self._gl_ids[code] = str(rows[0]["ID"])
        return self._gl_ids[code]

    async def _supplier(self, number: str) -> str:
        if number not in self._supplier_ids:
            rows = await self._get_all(
                "crm/Accounts",
                {"$filter": f"trim(Code) eq {_quote(number)} and IsSupplier eq true", "$select": "ID,Code"},
            )
            if not rows:
                raise NeedsPersonError(
                    f"Supplier {number} does not exist in Exact Online administration "
                    f"{await self.division()}.",
                    code="supplier_not_found",
                    field="supplier",
                )
            self._supplier_ids[number] = str(rows[0]["ID"])
        return self._supplier_ids[number]

    # -- results -------------------------------------------------------------------------
    @staticmethod
    def _entry_result(entry: Mapping[str, Any], what: str) -> PostingResult:
        number = entry.get("EntryNumber")
        return PostingResult(
            str(entry["EntryID"]), _entry_status(entry), detail=f"{what} {number}" if number else what
        )

    # -- tokens --------------------------------------------------------------------------
    async def _access_token(self) -> str:
        """A live access token; rotates (and first stores) the refresh token when due."""
        if self._unsaved is None and self._access and self._clock() < self._access_expires - ACCESS_MARGIN:
            return self._access
        async with self._token_lock:
            if self._unsaved is not None:
                await self._persist(*self._unsaved)
            if self._access and self._clock() < self._access_expires - ACCESS_MARGIN:
                return self._access
            await self._rotate()
            assert self._access is not None
            return self._access

    async def _rotate(self) -> None:
        stored = await self._store.get("refresh_token")
        token = self._refresh or stored or self._initial_refresh_token
        if not token:
            raise AuthenticationError(
                f"No Exact Online refresh token for {self.name}; run `python app.py connect {self.name}`."
            )
        data = await self._token_request(token)
        if data is None and stored and stored != token:
            # Another process rotated it and stored the newer one: use that.
            data = await self._token_request(stored)
        if data is None:
            raise AuthenticationError(
                f"Exact Online refused the refresh token of {self.name}; link it again with "
                f"`python app.py connect {self.name}`."
            )
        self.token_refreshes += 1
        expires = self._clock() + int(data.get("expires_in") or 600)
        # The old refresh token is dead now: remember the new one at once, store it,
        # and only then let anything use the new access token.
        self._refresh = str(data["refresh_token"])
        self._access = None
        await self._persist(self._refresh, str(data["access_token"]), expires)

    async def _token_request(self, refresh_token: str) -> dict[str, Any] | None:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            resp = await self._http.post("api/oauth2/token", data=form)
        except httpx.TransportError as exc:
            # The answer (with a new refresh token) may be lost; Exact then keeps the
            # old one valid for a while, so a later retry can still succeed.
            raise TransientError(
                f"Could not reach Exact Online to sign in ({type(exc).__name__}).",
                code="unreachable",
                nothing_written=True,  # signing in comes before the write it serves
            ) from None
        if resp.status_code in (400, 401):
            return None
        if resp.status_code >= 300:
            raise TransientError(
                f"Exact Online sign-in failed ({resp.status_code}).",
                code=f"http_{resp.status_code}",
                nothing_written=True,
            )
        data = decode_json(resp.text) or {}
        if not data.get("access_token") or not data.get("refresh_token"):
            raise TransientError(
                "Exact Online sign-in answered without tokens.", code="bad_token_answer", nothing_written=True
            )
        return data

    async def _persist(self, refresh: str, access: str, expires: float) -> None:
        detail = {
            "rotated_at": datetime.fromtimestamp(self._clock(), UTC).isoformat(),
            "division": self._division,
        }
        try:
            await self._store.set("refresh_token", refresh, detail)
        except Exception as exc:
            self._unsaved = (refresh, access, expires)
            log.error(
                "could not store the rotated Exact refresh token",
                extra={"integration": self.name, "error": type(exc).__name__},
            )
            raise TransientError(
                "The renewed Exact Online sign-in could not be saved, so nothing was sent; "
                "it is tried again with the next posting.",
                code="token_store",
                nothing_written=True,
            ) from None
        self._unsaved = None
        self._access, self._access_expires = access, expires

    # -- HTTP ----------------------------------------------------------------------------
    async def _api_path(self, path: str) -> str:
        if path.startswith("docs/"):
            return path
        return f"api/v1/{await self.division()}/{path}"

    async def _write(self, method: str, path: str, body: Any) -> dict[str, Any]:
        resp = await self._send(method, path, body=body, write=True)
        assert resp is not None
        data = self._api.read(resp, write=True)
        if not isinstance(data, dict):
            return {}  # 204 No Content (PUT, DELETE)
        return data.get("d") or {}

    async def _created(self, path: str, body: Any, key: str) -> dict[str, Any]:
        """POST a new record; an answer without its id cannot be recorded: look it up next time."""
        data = await self._write("POST", path, body)
        if not data.get(key):
            raise self._api.lost(f"its answer did not say the {key}")
        return data

    async def _get_one(self, path: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        resp = await self._send("GET", path, params=params, allow_404=True)
        if resp is None:
            return None
        d = (decode_json(resp.text) or {}).get("d") or {}
        if "results" in d:  # some entities answer a key look-up as a one-row list
            return d["results"][0] if d["results"] else None
        return d

    async def _get_all(self, path: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, following ``__next`` (each page is a call and is paced)."""
        rows: list[dict[str, Any]] = []
        resp = await self._send("GET", path, params=params)
        while resp is not None:
            d = (decode_json(resp.text) or {}).get("d") or {}
            rows.extend(d.get("results") or [])
            next_url = d.get("__next")
            resp = await self._send("GET", str(next_url)) if next_url else None
        return rows

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content: bytes | None = None,
        content_type: str = "application/json",
        write: bool = False,
        allow_404: bool = False,
    ) -> httpx.Response | None:
        """One paced call through the shared classifier (a 401 renews the token once)."""
        url = path if path.startswith("http") else await self._api_path(path)
        return await self._api.send(
            method,
            url,
            params=params,
            body=body,
            content=content,
            content_type=content_type,
            write=write,
            allow=(404,) if allow_404 else (),
        )

    def _forget_access(self, token: str) -> None:
        if self._access == token:
            self._access = None  # revoked early: renew once

    def _own_failure(self, resp: httpx.Response, refusal: Refusal, write: bool) -> ConnectorError | None:
        """Exact's own 4xx: "already exists" and a 429 paced by the minutely reset."""
        if refusal.status == 429 and refusal.retry_after is None and self.pacer.minutely_reset is not None:
            wait = max(0.0, self.pacer.minutely_reset - self._clock())
            return RateLimitedError(refusal.text or "Too many requests.", retry_after=wait)
        if refusal.status == 400 and re.search(r"already (exists|in use)|bestaat al", refusal.text, re.I):
            return RecordExistsError(refusal.text)
        return None


def _error_text(resp: httpx.Response) -> tuple[str, str | None]:
    """``error.message.value`` of Exact's error envelope (nothing from a gateway page)."""
    try:
        data = decode_json(resp.text)
    except ValueError:
        return "", None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        message = data["error"].get("message")
        if isinstance(message, dict):
            return str(message.get("value") or "").strip(), None
        return str(message or "").strip(), None
    return "", None


def _entry_status(entry: Mapping[str, Any]) -> RecordStatus:
    try:
        status = int(entry.get("Status") or 0)
    except (TypeError, ValueError):
        status = 0
    return RecordStatus.DRAFT if status == STATUS_OPEN else RecordStatus.BOOKED
