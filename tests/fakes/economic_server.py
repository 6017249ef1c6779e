"""A fake Visma e-conomic REST server for tests, written from the public docs.

Sources: repository e-conomic/slate (``_introduction.md``: auth headers, collection
envelope, pagination, filters, annotated errors; ``_journals.md``: journals,
vouchers, entries; ``_customers.md``) and ``ERP-NOTES.md``. Where the docs are
silent the fake does the most plausible thing and says so in a ``# docs silent``
comment, so a reader can tell documented behaviour from our guess.

It keeps journals with draft entries grouped into vouchers, numbers vouchers from
each journal's range, books a voucher on request (its entries leave the journal
and appear as ledger entries under ``/accounting-years/{year}/entries``), keeps
customers, and validates like the real one. Switches make it misbehave: apply a
write and then drop the connection or hang, answer 429 with ``Retry-After``, or
answer 503.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from tests.fakes.lost_answer import LostAnswer

APP_SECRET_TOKEN = "fake-app-secret-7c1e0b44"
AGREEMENT_GRANT_TOKEN = "fake-agreement-grant-2d9a61f3"

DEFAULT_ACCOUNTS = frozenset({1010, 2750, 2800, 2820, 3600, 4000, 5820, 5830, 6800, 7200})
DEFAULT_SUPPLIERS = {3001: "Kontorland A/S", 3002: "Softhouse ApS"}
DEFAULT_DISTRIBUTIONS = {1: "Sales", 2: "Administration"}
DEFAULT_CURRENCIES = frozenset({"DKK", "EUR", "SEK", "NOK", "USD", "GBP"})
CREDITORS_ACCOUNT = 6800  # docs silent: the control account booked supplier entries land on
MAX_PAGE_SIZE = 1000  # docs: "increase this to 1.000"
DEFAULT_PAGE_SIZE = 20  # docs: "the collection endpoints will return 20 resources"
ENTRY_KINDS = {"supplierInvoices": "supplierInvoice", "supplierPayments": "supplierPayment"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- JSON with exact amounts -----------------------------------------------------------------
def dumps(value: Any) -> str:
    """JSON where a ``Decimal`` is written as a number, digit for digit."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer (or an empty one)."""
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, text=dumps(body), content_type="application/json", headers=headers)


def problem(
    status: int, message: str, *, errors: Any = None, hint: str = "", headers: dict[str, str] | None = None
) -> web.Response:
    """e-conomic's error document (docs: "Annotated errors")."""
    body: dict[str, Any] = {
        "message": message,
        "developerHint": hint,
        "logId": str(uuid.uuid4()),
        "httpStatusCode": status,
        "logTime": "2026-11-22T10:00:00",
    }
    if errors is not None:
        body["errors"] = errors
    return answer(status, body, headers)


def error_item(code: str, message: str, value: Any = None, hint: str = "") -> dict[str, Any]:
    """One entry of an annotated ``errors`` list."""
    item: dict[str, Any] = {"errorCode": code, "message": message}
    if value is not None:
        item["value"] = value
    if hint:
        item["developerHint"] = hint
    return item


async def _body(request: web.Request) -> Any:
    """The request's JSON (aiohttp keeps the bytes read once by the gate)."""
    return json.loads(await request.read(), parse_float=Decimal)


class Invalid(Exception):
    """A request the fake refuses with 400 and an annotated errors document."""

    def __init__(self, errors: Any, message: str = "Validation error."):
        super().__init__(message)
        self.errors, self.message = errors, message


# -- filters (docs: "Filtering") -----------------------------------------------------------
_UNESCAPE = {"$$": "$", "$(": "(", "$)": ")", "$*": "*", "$,": ",", "$[": "[", "$]": "]"}
_PREDICATE = re.compile(r"^([A-Za-z.]+)\$(eq|ne|gt|gte|lt|lte|like):(.*)$", re.DOTALL)


def _split_and(text: str) -> list[str]:
    # "$and:" joins predicates; "$$" is an escaped dollar and never starts an operator.
    parts, start, i = [], 0, 0
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("$and:", i):
            parts.append(text[start:i])
            i += 5
            start = i
        else:
            i += 1
    parts.append(text[start:])
    return parts


def parse_filter(text: str, filterable: Iterable[str]) -> list[tuple[str, str, str]]:
    """``voucherNumber$eq:5$and:text$like:X`` -> predicates; 400 for what is not allowed.

    Only ``$and:`` is supported (the connector needs nothing else); ``$or:``,
    parentheses and ``$in:`` answer 400 from this fake.
    """
    allowed = set(filterable)
    predicates = []
    for part in _split_and(text):
        match = _PREDICATE.match(part)
        if not match:
            raise Invalid(None, f"The filter '{part}' is not understood.")
        name, op, raw = match.groups()
        if name not in allowed:
            raise Invalid(None, f"Filtering on property '{name}' is not allowed.")
        value = raw
        for escaped, plain in _UNESCAPE.items():
            value = value.replace(escaped, plain)
        predicates.append((name, op, value))
    return predicates


def _field(item: dict[str, Any], name: str) -> Any:
    value: Any = item
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(item: dict[str, Any], predicates: list[tuple[str, str, str]]) -> bool:
    for name, op, wanted in predicates:
        value = _field(item, name)
        if op == "like":
            # docs: no wildcard means "contains"; strings compare case-insensitively
            pattern = wanted if "*" in wanted else f"*{wanted}*"
            regex = "^" + ".*".join(re.escape(p) for p in pattern.lower().split("*")) + "$"
            if value is None or not re.match(regex, str(value).lower(), re.DOTALL):
                return False
            continue
        left: Any = value
        right: Any = wanted
        if isinstance(value, int | Decimal):
            try:
                right = Decimal(wanted)
            except InvalidOperation:
                return False
        else:
            left, right = str(value or "").lower(), wanted.lower()
        if not {
            "eq": left == right,
            "ne": left != right,
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[op]:
            return False
    return True


# -- state ---------------------------------------------------------------------------------
@dataclass
class JournalEntry:
    """A draft entry in a journal, as posted (amounts as ``Decimal``)."""

    number: int
    journal: int
    year: str
    voucher_number: int
    kind: str  # supplierInvoices | supplierPayments
    data: dict[str, Any]


@dataclass
class Switches:
    """Ways to make the fake misbehave."""

    #: the next N writes are applied, then no answer comes back
    timeouts_after_write: int = 0
    #: "close": drop the connection at once; "hang": keep it open, silent, until the client
    #: gives up (its own timeout) or the server stops
    timeout_mode: str = "close"
    #: the next call answers 429 with this many seconds in Retry-After (0 = off)
    rate_limit_next: int = 0
    #: the next N calls answer ``fail_status`` (503 unless changed) without doing anything
    fail_next: int = 0
    fail_status: int = 503
    #: whether /accounting-years/{year}/entries may be filtered on ``text``
    text_filterable: bool = True


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class FakeEconomic:
    """One e-conomic agreement on a loopback port."""

    def __init__(
        self,
        *,
        app_secret_token: str = APP_SECRET_TOKEN,
        agreement_grant_token: str = AGREEMENT_GRANT_TOKEN,
        accounts: Iterable[int] = DEFAULT_ACCOUNTS,
        suppliers: dict[int, str] | None = None,
        departmental_distributions: dict[int, str] | None = None,
        currencies: Iterable[str] = DEFAULT_CURRENCIES,
        journals: dict[int, tuple[int, int]] | None = None,
        years: Iterable[str] = ("2025", "2026", "2027"),
    ):
        self.tokens = (app_secret_token, agreement_grant_token)
        self.accounts = set(accounts)
        self.suppliers = dict(DEFAULT_SUPPLIERS if suppliers is None else suppliers)
        self.distributions = dict(
            DEFAULT_DISTRIBUTIONS if departmental_distributions is None else departmental_distributions
        )
        self.currencies = set(currencies)
        # journal -> (first, last) voucher number of its range
        self.journals = dict(journals or {1: (50001, 59999)})
        self.years = set(years)
        self.switches = Switches()
        #: apply a write, then answer 500/502/504, hang or drop (tests.fakes.lost_answer)
        self.lost_answer = LostAnswer(lambda status: problem(status, "An internal error occurred."))
        self.entries: dict[int, JournalEntry] = {}
        self.ledger: dict[str, list[dict[str, Any]]] = {year: [] for year in self.years}
        self.customers: dict[int, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.writes = 0
        self._next_entry = 1
        self._next_ledger_entry = 1
        self._counters: dict[int, int] = {}
        self._release: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> str:
        """Serve on 127.0.0.1, a free port; returns the base URL."""
        self._release = asyncio.Event()
        app = web.Application(middlewares=[self.lost_answer.middleware, self._gate])
        app.add_routes(
            [
                web.get("/journals", self._journals),
                web.get(r"/journals/{journal:\d+}", self._journal),
                web.get(r"/journals/{journal:\d+}/vouchers", self._vouchers),
                web.post(r"/journals/{journal:\d+}/vouchers", self._post_vouchers),
                web.get(r"/journals/{journal:\d+}/vouchers/{ref}", self._voucher),
                web.get(r"/journals/{journal:\d+}/entries", self._journal_entries),
                web.delete(r"/journals/{journal:\d+}/entries/{entry:\d+}", self._delete_entry),
                web.get("/accounting-years/{year}/entries", self._year_entries),
                web.get("/customers", self._customers),
                web.post("/customers", self._post_customer),
                web.get(r"/customers/{number:\d+}", self._customer),
                web.put(r"/customers/{number:\d+}", self._put_customer),
                web.delete(r"/customers/{number:\d+}", self._delete_customer),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, shutdown_timeout=1.0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Let hanging answers go, then close the server."""
        if self._release is not None:
            self._release.set()
        self.lost_answer.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- what tests steer and inspect ----------------------------------------------------
    def book(self, year: str, voucher_number: int, journal: int = 1) -> None:
        """Book a draft voucher: its entries leave the journal for the year's ledger.

        docs silent: the legacy REST API documents no booking call; e-conomic books
        from its UI. Each draft entry becomes two ledger entries (the supplier's
        side on the creditors account, and the contra account), sharing voucher
        number, date and text.
        """
        drafts = self._voucher_entries(journal, year, voucher_number)
        if not drafts:
            raise KeyError(f"no draft voucher {year}-{voucher_number} in journal {journal}")
        for entry in drafts:
            del self.entries[entry.number]
            amount = Decimal(entry.data["amount"])
            for account, signed in (
                (CREDITORS_ACCOUNT, amount),
                (entry.data["contraAccount"]["accountNumber"], -amount),
            ):
                row = {
                    "entryNumber": self._next_ledger_entry,
                    "entryType": ENTRY_KINDS[entry.kind],
                    "voucherNumber": voucher_number,
                    "date": entry.data["date"],
                    "text": entry.data.get("text", ""),
                    "amount": signed,
                    "amountInBaseCurrency": signed,
                    "currency": entry.data.get("currency", {}).get("code", "DKK"),
                    "account": {"accountNumber": account},
                    "supplier": entry.data["supplier"],
                }
                self._next_ledger_entry += 1
                self.ledger.setdefault(year, []).append(row)

    def book_ref(self, external_ref: str, journal: int = 1) -> None:
        """Book by ``"2026-50001"``."""
        year, _, number = external_ref.rpartition("-")
        self.book(year, int(number), journal)

    def draft_vouchers(self, journal: int = 1) -> dict[str, list[JournalEntry]]:
        """Draft vouchers of a journal by ``"year-number"``."""
        found: dict[str, list[JournalEntry]] = {}
        for entry in sorted(self.entries.values(), key=lambda e: e.number):
            if entry.journal == journal:
                found.setdefault(f"{entry.year}-{entry.voucher_number}", []).append(entry)
        return found

    def records_with_key(self, key: str) -> int:
        """Vouchers, drafts or booked, whose entry text carries ``[key]``."""
        marker = f"[{key}]"
        refs = {
            (e.journal, e.year, e.voucher_number)
            for e in self.entries.values()
            if marker in e.data.get("text", "")
        }
        for year, rows in self.ledger.items():
            refs |= {(0, year, r["voucherNumber"]) for r in rows if marker in r["text"]}
        return len(refs)

    def amount_of(self, external_ref: str, journal: int = 1) -> Decimal:
        """The summed entry amounts of a draft voucher (the supplier's side: invoice < 0)."""
        return sum(
            (Decimal(e.data["amount"]) for e in self.draft_vouchers(journal)[external_ref]), Decimal(0)
        )

    def posted(self, method: str = "POST", prefix: str = "/journals") -> list[Recorded]:
        """The recorded requests of one method under a path."""
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # -- gate: auth, switches --------------------------------------------------------------
    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            body = raw
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), body, raw, dict(request.headers))
        )
        secret = request.headers.get("X-AppSecretToken")
        grant = request.headers.get("X-AgreementGrantToken")
        if (secret, grant) != self.tokens:
            # docs: wrong or missing tokens answer 401; the text never repeats them
            return problem(
                401,
                "You are not authorized to access this resource.",
                hint="Check the X-AppSecretToken and X-AgreementGrantToken headers.",
            )
        if self.switches.rate_limit_next:
            wait, self.switches.rate_limit_next = self.switches.rate_limit_next, 0
            return problem(
                429,
                "Too many requests.",
                headers={"Retry-After": str(wait)},
                hint="Honour the Retry-After header.",
            )
        if self.switches.fail_next > 0:
            self.switches.fail_next -= 1
            status = self.switches.fail_status
            return problem(status, "Service unavailable." if status == 503 else "An internal error occurred.")
        if request.method in ("POST", "PUT"):
            if not request.content_type.startswith("application/json"):
                return problem(415, "Content-Type must be application/json.")
            if not isinstance(body, dict | list):
                return problem(400, "The request body is not a JSON document.")
        try:
            return await handler(request)
        except Invalid as exc:
            return problem(
                400,
                exc.message,
                errors=exc.errors,
                hint="Inspect validation errors and correct your request.",
            )

    async def _after_write(self, request: web.Request, response: web.Response) -> web.Response:
        """Count the write; when switched, lose the answer after it was applied."""
        self.writes += 1
        if self.switches.timeouts_after_write <= 0:
            return response
        self.switches.timeouts_after_write -= 1
        if self.switches.timeout_mode == "hang":
            assert self._release is not None
            await self._release.wait()
        # Drop the connection: the client never sees the answer (aiohttp cannot write it).
        if request.transport is not None:
            request.transport.close()
        return response

    # -- collections ---------------------------------------------------------------------
    def _page(
        self, request: web.Request, items: list[dict[str, Any]], filterable: Iterable[str] = ()
    ) -> web.Response:
        query = request.query
        try:
            skip = int(query.get("skippages", "0"))
            size = int(query.get("pagesize", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return problem(400, "skippages and pagesize must be whole numbers.")
        if size < 1 or size > MAX_PAGE_SIZE or skip < 0:
            return problem(400, f"pagesize must be between 1 and {MAX_PAGE_SIZE}.")
        total_unfiltered = len(items)
        if "filter" in query:
            if not filterable:
                # docs silent on which properties of this collection filter; the connector
                # must not rely on any, so the fake allows none.
                return problem(400, "This collection cannot be filtered.")
            predicates = parse_filter(query["filter"], filterable)
            items = [item for item in items if _matches(item, predicates)]
        page = items[skip * size : (skip + 1) * size]
        self_url = f"{self.url}{request.path}"
        pagination: dict[str, Any] = {
            "skipPages": skip,
            "pageSize": size,
            "maxPageSizeAllowed": MAX_PAGE_SIZE,
            "results": len(items),
            "resultsWithoutFilter": total_unfiltered,
            "firstPage": f"{self_url}?skippages=0&pagesize={size}",
            "lastPage": f"{self_url}?skippages={max(0, (len(items) - 1) // size)}&pagesize={size}",
        }
        if (skip + 1) * size < len(items):
            pagination["nextPage"] = f"{self_url}?skippages={skip + 1}&pagesize={size}"
        return answer(200, {"collection": page, "pagination": pagination, "self": str(request.rel_url)})

    # -- journals ------------------------------------------------------------------------
    def _journal_number(self, request: web.Request) -> int:
        number = int(request.match_info["journal"])
        if number not in self.journals:
            raise web.HTTPNotFound(
                text=dumps({"message": f"Journal {number} not found.", "httpStatusCode": 404}),
                content_type="application/json",
            )
        return number

    def _journal_doc(self, number: int) -> dict[str, Any]:
        first, last = self.journals[number]
        return {
            "journalNumber": number,
            "name": f"Kassekladde {number}",
            "settings": {"voucherNumbers": {"minimumVoucherNumber": first, "maximumVoucherNumber": last}},
            "vouchers": f"{self.url}/journals/{number}/vouchers",
            "entries": f"{self.url}/journals/{number}/entries",
            "self": f"{self.url}/journals/{number}",
        }

    async def _journals(self, request: web.Request) -> web.Response:
        return self._page(request, [self._journal_doc(n) for n in sorted(self.journals)])

    async def _journal(self, request: web.Request) -> web.Response:
        return answer(200, self._journal_doc(self._journal_number(request)))

    def _entry_doc(self, entry: JournalEntry) -> dict[str, Any]:
        return {
            **entry.data,
            "journalEntryNumber": entry.number,
            "type": ENTRY_KINDS[entry.kind],
            "voucher": {"voucherNumber": entry.voucher_number, "accountingYear": {"year": entry.year}},
            "self": f"{self.url}/journals/{entry.journal}/entries/{entry.number}",
        }

    def _voucher_entries(self, journal: int, year: str, number: int) -> list[JournalEntry]:
        return [
            e
            for e in sorted(self.entries.values(), key=lambda e: e.number)
            if (e.journal, e.year, e.voucher_number) == (journal, year, number)
        ]

    def _voucher_doc(self, journal: int, year: str, number: int) -> dict[str, Any]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in self._voucher_entries(journal, year, number):
            groups.setdefault(entry.kind, []).append(self._entry_doc(entry))
        return {
            "accountingYear": {"year": year},
            "journal": {"journalNumber": journal},
            "voucherNumber": number,
            "entries": groups,
            "self": f"{self.url}/journals/{journal}/vouchers/{year}-{number}",
        }

    async def _vouchers(self, request: web.Request) -> web.Response:
        journal = self._journal_number(request)
        keys = sorted({(e.year, e.voucher_number) for e in self.entries.values() if e.journal == journal})
        return self._page(request, [self._voucher_doc(journal, y, n) for y, n in keys])

    async def _voucher(self, request: web.Request) -> web.Response:
        journal = self._journal_number(request)
        year, _, number = request.match_info["ref"].rpartition("-")
        if not number.isdigit() or not self._voucher_entries(journal, year, int(number)):
            return problem(404, "Voucher not found.")
        return answer(200, self._voucher_doc(journal, year, int(number)))

    async def _journal_entries(self, request: web.Request) -> web.Response:
        journal = self._journal_number(request)
        # docs: "sorted by entry type"
        entries = sorted(
            (e for e in self.entries.values() if e.journal == journal), key=lambda e: (e.kind, e.number)
        )
        return self._page(request, [self._entry_doc(e) for e in entries])

    async def _delete_entry(self, request: web.Request) -> web.Response:
        journal = self._journal_number(request)
        number = int(request.match_info["entry"])
        entry = self.entries.get(number)
        if entry is None or entry.journal != journal:
            return problem(404, f"Entry {number} not found in journal {journal}.")
        del self.entries[number]
        return await self._after_write(request, answer(204))

    async def _post_vouchers(self, request: web.Request) -> web.Response:
        journal = self._journal_number(request)
        body = await _body(request)
        # docs: "Bulk creation is supported": an array of vouchers, or one voucher
        vouchers = body if isinstance(body, list) else [body]
        plans, errors = [], []
        for index, voucher in enumerate(vouchers):
            problems, plan = self._check_voucher(journal, voucher)
            if problems:
                errors.append({"arrayIndex": index, **problems} if isinstance(body, list) else problems)
            plans.append(plan)
        if errors:
            # all or nothing: one bad voucher saves none
            raise Invalid(errors if isinstance(body, list) else errors[0])
        created = [self._apply_voucher(journal, plan) for plan in plans]
        # docs (ERP-NOTES): 201 with an array of vouchers
        return await self._after_write(request, answer(201, created))

    def _check_voucher(self, journal: int, voucher: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        problems: dict[str, Any] = {}
        if not isinstance(voucher, dict):
            return {"voucher": {"errors": [error_item("E04000", "A voucher must be an object.")]}}, {}
        year = str((voucher.get("accountingYear") or {}).get("year") or "")
        if not year:
            problems["accountingYear"] = {
                "errors": [error_item("E04730", "Property accountingYear is required.")]
            }
        elif year not in self.years:
            problems["accountingYear"] = {
                "errors": [error_item("E06000", f"Accounting year {year} does not exist.", year)]
            }
        given = (voucher.get("journal") or {}).get("journalNumber")
        if given is not None and given != journal:
            problems["journal"] = {
                "errors": [
                    error_item(
                        "E04000", f"journalNumber {given} does not match the journal in the URL.", given
                    )
                ]
            }
        groups = voucher.get("entries")
        entries: list[tuple[str, dict[str, Any]]] = []
        if not isinstance(groups, dict) or not any(groups.values()):
            problems["entries"] = {"errors": [error_item("E04730", "A voucher needs entries.")]}
        else:
            entry_problems: dict[str, Any] = {}
            for kind, items in groups.items():
                if kind not in ENTRY_KINDS:
                    # docs list financeVouchers, customerPayments, manualCustomerInvoices too;
                    # this fake implements the supplier entries the connector writes
                    entry_problems[kind] = {
                        "errors": [error_item("E04000", f"The fake does not implement {kind}.")]
                    }
                    continue
                listed = []
                for index, item in enumerate(items or []):
                    found = self._check_entry(kind, item, year)
                    if found:
                        listed.append({"arrayIndex": index, **found})
                    entries.append((kind, item))
                if listed:
                    entry_problems[kind] = listed
            if entry_problems:
                problems["entries"] = entry_problems
        numbers = {(item.get("voucher") or {}).get("voucherNumber") for _, item in entries}
        number = next((n for n in numbers if n is not None), None)
        if number is None and not problems:
            number = self._next_voucher_number(journal, year)
            if number is None:
                problems["voucherNumber"] = {
                    "errors": [
                        error_item("E04000", f"No voucher number left in the range of journal {journal}.")
                    ]
                }
        return problems, {"year": year, "number": number, "entries": entries}

    def _next_voucher_number(self, journal: int, year: str) -> int | None:
        # docs silent on gaps: the journal hands numbers out upwards from its range and never
        # goes back, skipping any a client chose itself (ERP-NOTES: "assign the next one")
        first, last = self.journals[journal]
        used = {e.voucher_number for e in self.entries.values() if e.year == year}
        used |= {r["voucherNumber"] for r in self.ledger.get(year, [])}
        number = max(self._counters.get(journal, first), first)
        while number in used:
            number += 1
        if number > last:
            return None
        self._counters[journal] = number + 1
        return number

    def _check_entry(self, kind: str, item: Any, year: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def refuse(field_name: str, code: str, message: str, value: Any = None) -> None:
            found.setdefault(field_name, {"errors": []})["errors"].append(error_item(code, message, value))

        if not isinstance(item, dict):
            refuse("entry", "E04000", "An entry must be an object.")
            return found
        supplier = (item.get("supplier") or {}).get("supplierNumber")
        if supplier is None:
            refuse("supplier", "E04730", "Property supplier is required.")
        elif supplier not in self.suppliers:
            refuse("supplier", "E06000", f"Supplier {supplier} does not exist.", supplier)
        amount = item.get("amount")
        if amount is None:
            refuse("amount", "E04730", "Property amount is required.")
        elif isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            refuse("amount", "E04000", "amount must be a number.", amount)
        elif Decimal(amount).as_tuple().exponent < -2:  # type: ignore[operator]
            # docs (annotated errors example): E04740 for more than two decimals
            refuse("amount", "E04740", "amount scale cannot be greater then two decimal places.", amount)
        # docs silent on the sign: either is a valid document (a positive supplier invoice
        # is a credit note), so the fake refuses neither; tests check what was sent.
        entry_date = self._date(item.get("date"))
        if entry_date is None:
            refuse("date", "E04730", "Property date is required and must be YYYY-MM-DD.", item.get("date"))
        elif year and str(entry_date.year) != year:
            # docs silent: the year is named by its calendar year here
            refuse("date", "E04000", f"Date {entry_date} is not in accounting year {year}.", item.get("date"))
        if "dueDate" in item and self._date(item["dueDate"]) is None:
            refuse("dueDate", "E04000", "dueDate must be YYYY-MM-DD.", item["dueDate"])
        code = (item.get("currency") or {}).get("code")
        if code is not None and code not in self.currencies:
            refuse("currency", "E06000", f"Currency {code} does not exist.", code)
        contra = (item.get("contraAccount") or {}).get("accountNumber")
        if contra is None:
            # docs silent: without a contra account the entry has no other side
            refuse("contraAccount", "E04730", "Property contraAccount is required.")
        elif contra not in self.accounts:
            refuse("contraAccount", "E06000", f"Account {contra} does not exist.", contra)
        distribution = (item.get("departmentalDistribution") or {}).get("departmentalDistributionNumber")
        if "departmentalDistribution" in item and distribution not in self.distributions:
            refuse(
                "departmentalDistribution",
                "E06000",
                f"Departmental distribution {distribution} does not exist.",
                distribution,
            )
        text = item.get("text")
        if text is not None and len(str(text)) > 250:
            refuse("text", "E04000", "text may be at most 250 characters.", len(str(text)))
        invoice_number = item.get("supplierInvoiceNumber")
        if invoice_number is not None and len(str(invoice_number)) > 30:
            refuse(
                "supplierInvoiceNumber",
                "E04000",
                "supplierInvoiceNumber may be at most 30 characters.",
                invoice_number,
            )
        number = (item.get("voucher") or {}).get("voucherNumber")
        if number is not None and (not isinstance(number, int) or not 0 < number < 999999999):
            refuse("voucherNumber", "E04000", "voucherNumber must be between 1 and 999999998.", number)
        return found

    @staticmethod
    def _date(value: Any) -> date | None:
        try:
            return date.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            return None

    def _apply_voucher(self, journal: int, plan: dict[str, Any]) -> dict[str, Any]:
        year, number = plan["year"], plan["number"]
        for kind, item in plan["entries"]:
            data = {k: v for k, v in item.items() if k not in ("voucher", "self", "type")}
            data["amount"] = Decimal(data["amount"])
            self.entries[self._next_entry] = JournalEntry(self._next_entry, journal, year, number, kind, data)
            self._next_entry += 1
        return self._voucher_doc(journal, year, number)

    # -- accounting years ----------------------------------------------------------------
    async def _year_entries(self, request: web.Request) -> web.Response:
        year = request.match_info["year"]
        if year not in self.years:
            return problem(404, f"Accounting year {year} not found.")
        filterable = ["voucherNumber", "date", "entryNumber", "account.accountNumber"]
        if self.switches.text_filterable:
            filterable.append("text")
        return self._page(request, self.ledger.get(year, []), filterable)

    # -- customers (docs: _customers.md) -------------------------------------------------
    def _check_customer(self, body: dict[str, Any]) -> None:
        found: dict[str, Any] = {}
        required = {
            "currency": body.get("currency"),
            "name": body.get("name"),
            "customerGroup": (body.get("customerGroup") or {}).get("customerGroupNumber"),
            "paymentTerms": (body.get("paymentTerms") or {}).get("paymentTermsNumber"),
            "vatZone": (body.get("vatZone") or {}).get("vatZoneNumber"),
        }
        for name, value in required.items():
            if value in (None, ""):
                found[name] = {"errors": [error_item("E04730", f"Property {name} is required.")]}
        if body.get("currency") and body["currency"] not in self.currencies:
            found["currency"] = {
                "errors": [error_item("E06000", "currency does not exist.", body["currency"])]
            }
        if len(str(body.get("name") or "")) > 255:
            found["name"] = {"errors": [error_item("E04000", "name may be at most 255 characters.")]}
        if found:
            raise Invalid(found)

    def _customer_doc(self, number: int) -> dict[str, Any]:
        return {**self.customers[number], "customerNumber": number, "self": f"{self.url}/customers/{number}"}

    async def _customers(self, request: web.Request) -> web.Response:
        return self._page(
            request,
            [self._customer_doc(n) for n in sorted(self.customers)],
            ["customerNumber", "name", "email"],
        )

    async def _customer(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        if number not in self.customers:
            return problem(404, f"Customer {number} not found.")
        return answer(200, self._customer_doc(number))

    async def _post_customer(self, request: web.Request) -> web.Response:
        body = await _body(request)
        self._check_customer(body)
        number = body.get("customerNumber")
        if number is None:
            number = max(self.customers, default=0) + 1
        elif number in self.customers:
            # docs silent on a taken number: a 400 on customerNumber, like other validation
            raise Invalid(
                {
                    "customerNumber": {
                        "errors": [
                            error_item("E06010", f"Customer number {number} is already in use.", number)
                        ]
                    }
                }
            )
        self.customers[number] = {k: v for k, v in body.items() if k != "self"}
        return await self._after_write(request, answer(201, self._customer_doc(number)))

    async def _put_customer(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        if number not in self.customers:
            # docs: PUT to a missing resource creates it only where ids may be chosen;
            # silent for customers, so the fake answers 404
            return problem(404, f"Customer {number} not found.")
        body = await _body(request)
        self._check_customer(body)
        self.customers[number] = {k: v for k, v in body.items() if k != "self"}
        return await self._after_write(request, answer(200, self._customer_doc(number)))

    async def _delete_customer(self, request: web.Request) -> web.Response:
        # docs (_customers.md): "will return a HttpStatusCode.NoContent (204) on success";
        # docs silent on a missing one: 404, like GET. The fake keeps no invoices, so nothing
        # ever stops a delete here.
        number = int(request.match_info["number"])
        if self.customers.pop(number, None) is None:
            return problem(404, f"Customer {number} not found.")
        return await self._after_write(request, answer(204))
