"""A fake Procountor REST API on loopback, written from the public docs.

Sources: Procountor's developer pages (OAuth client-credentials flow with an API
key), the help-centre ledger-receipt samples (``POST /ledgerreceipts`` with type
JOURNAL, status UNFINISHED, transactions with ``accountingValue`` debit + / credit
-, ``dimensionItemValues``; approve with ``PUT /ledgerreceipts/{id}/approve``) and
the open-source client vilkasgroup/Procountor (``GET /ledgerreceipts`` filters:
startDate, endDate, types, previousId, orderById; 401 means "renew the token").

Where the docs are silent the fake does the most plausible thing and says so:
name longer than 100 and description longer than 255 characters are refused;
a PUT with an old ``version`` answers 409; the receipt list returns "basic
information" without the name; a test company or a blocked group answers 403.

Switches let tests make it misbehave: answer 429 with Retry-After, 5xx, or
apply a write and then hang so the client times out; ``lost_answer`` applies a
write and then answers 500/502/504, hangs or drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from tests.fakes.lost_answer import LostAnswer

DEFAULT_ACCOUNTS: dict[str, str] = {
    "1910": "Bank",
    "2800": "Office supplies",
    "2871": "Trade creditors",
    "2939": "Payroll liabilities",
    "5000": "Salaries",
    "6130": "Pension costs",
}

#: GET /dimensions: dimensions with their items (ids are database ids, as in Procountor)
DEFAULT_DIMENSIONS: list[dict[str, Any]] = [
    {
        "id": 87540,
        "name": "Cost center",
        "items": [
            {"id": 136934, "codeName": "CC-100", "status": "ACTIVE"},
            {"id": 136935, "codeName": "CC-200", "status": "ACTIVE"},
        ],
    },
    {
        "id": 87541,
        "name": "Cost unit",
        "items": [
            {"id": 136940, "codeName": "CU-1", "status": "ACTIVE"},
            {"id": 136941, "codeName": "CU-2", "status": "ACTIVE"},
        ],
    },
    {
        "id": 87542,
        "name": "Department",
        "items": [
            {"id": 136950, "codeName": "1", "status": "ACTIVE"},
        ],
    },
]

NAME_MAX = 100  # not documented
DESCRIPTION_MAX = 255  # not documented


def _dumps(obj: Any) -> str:
    """JSON with Decimals as exact numbers (the real API sends numbers)."""
    nonce = uuid.uuid4().hex
    numbers: list[str] = []

    def convert(value: Any) -> Any:
        if isinstance(value, Decimal):
            numbers.append(format(value, "f"))
            return f"@@{nonce}:{len(numbers) - 1}@@"
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        return value

    text = json.dumps(convert(obj))
    return re.sub(rf'"@@{nonce}:(\d+)@@"', lambda m: numbers[int(m.group(1))], text)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=_dumps(data), status=status, headers=headers, content_type="application/json")


def _errors(status: int, *errors: tuple[str, str]) -> web.Response:
    return _json({"errors": [{"status": status, "field": f, "message": m} for f, m in errors]}, status)


class ProcountorFake:
    """The books of one Procountor company, reachable over HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        client_id: str = "pc-client",
        client_secret: str = "pc-secret",
        api_key: str = "pc-api-key",
        accounts: dict[str, str] | None = None,
        dimensions: list[dict[str, Any]] | None = None,
        token_ttl: int = 3600,
        hang_seconds: float = 10.0,
    ):
        self.client_id, self.client_secret, self.api_key = client_id, client_secret, api_key
        self.accounts = dict(accounts or DEFAULT_ACCOUNTS)
        self.dimensions = dimensions or DEFAULT_DIMENSIONS
        self.token_ttl = token_ttl
        self.hang_seconds = hang_seconds
        self.receipts: dict[int, dict[str, Any]] = {}
        self._next_id = 13787852
        self._version_seq = 0
        self.tokens: set[str] = set()
        # what tests inspect
        self.token_requests = 0
        self.calls: list[tuple[str, str]] = []  # (method, path) of every API call
        self.writes = 0  # POST/PUT that reached the books
        # switches
        self.timeouts_after_write = 0
        self.rate_limit_next = 0  # seconds for Retry-After; 0 = off
        self.fail_next = 0
        self.race_next_put = False  # someone else saves the receipt just before our PUT
        self.company_is_test = False
        self.blocked_group = False
        #: apply a write, then answer 500/502/504, hang or drop (tests.fakes.lost_answer)
        self.lost_answer = LostAnswer(lambda status: _errors(status, ("", "Internal server error.")))
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> str:
        """Listen on 127.0.0.1 (port 0); returns the API base URL (``.../api``)."""
        app = web.Application(middlewares=[self.lost_answer.middleware, self._middleware])
        app.router.add_post("/api/oauth/token", self._token)
        app.router.add_get("/api/dimensions", self._get_dimensions)
        app.router.add_get("/api/ledgerreceipts", self._list_receipts)
        app.router.add_post("/api/ledgerreceipts", self._post_receipt)
        app.router.add_get("/api/ledgerreceipts/{id}", self._get_receipt)
        app.router.add_put("/api/ledgerreceipts/{id}", self._put_receipt)
        app.router.add_put("/api/ledgerreceipts/{id}/approve", self._approve)
        app.router.add_put("/api/ledgerreceipts/{id}/invalidate", self._invalidate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/api"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()  # ends any hanging handler at once
        self.lost_answer.release()
        if self._runner:
            await self._runner.cleanup()

    # -- what tests use ----------------------------------------------------------------
    def book(self, receipt_id: int | str) -> None:
        """Approve a receipt (as someone pressing Approve in Procountor)."""
        self.receipts[int(receipt_id)]["status"] = "APPROVED"

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working (as after an expiry)."""
        self.tokens.clear()

    def receipts_with_key(self, key: str) -> list[dict[str, Any]]:
        return [r for r in self.receipts.values() if str(r.get("name", "")).startswith(key)]

    # -- plumbing ----------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/api/oauth/token":
            return await handler(request)
        self.calls.append((request.method, request.path))
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return _errors(401, ("", "Unauthorized: the access token is missing or expired."))
        if self.rate_limit_next:
            wait, self.rate_limit_next = self.rate_limit_next, 0
            body = {"errors": [{"status": 429, "field": "", "message": "Too many requests."}]}
            return _json(body, 429, headers={"Retry-After": str(wait)})
        if self.fail_next > 0:
            self.fail_next -= 1
            return _errors(503, ("", "Service temporarily unavailable."))
        if self.blocked_group:
            return _errors(403, ("company", "The user group of this API user is blocked."))
        if self.company_is_test and request.method in ("POST", "PUT"):
            # Not documented: a company flagged as a test company takes no bookings.
            return _errors(
                403, ("company", "The company is marked as a test company; receipts are not accepted.")
            )
        return await handler(request)

    async def _hang_if_asked(self) -> None:
        """After a write: optionally keep the client waiting past its timeout."""
        if self.timeouts_after_write > 0:
            self.timeouts_after_write -= 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)

    async def _body(self, request: web.Request) -> Any:
        try:
            return json.loads(await request.text(), parse_float=Decimal)
        except ValueError:
            return None

    # -- OAuth -------------------------------------------------------------------------
    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return _json({"error": "unsupported_grant_type"}, 400)
        if (form.get("client_id"), form.get("client_secret"), form.get("api_key")) != (
            self.client_id,
            self.client_secret,
            self.api_key,
        ):
            return _json({"error": "invalid_client"}, 401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return _json({"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl})

    # -- dimensions --------------------------------------------------------------------
    async def _get_dimensions(self, request: web.Request) -> web.Response:
        return _json(self.dimensions)

    # -- ledger receipts ---------------------------------------------------------------
    def _validate(self, body: Any, *, creating: bool) -> list[tuple[str, str]]:
        if not isinstance(body, dict):
            return [("", "The request body must be a ledger receipt object.")]
        errors: list[tuple[str, str]] = []
        for key in ("type", "status", "name", "receiptDate", "vatType", "vatStatus"):
            if body.get(key) in (None, ""):
                errors.append((key, "must not be null"))
        if body.get("type") not in (None, "JOURNAL"):
            errors.append(("type", "Only JOURNAL receipts can be created through the API."))
        if creating and body.get("status") not in (None, "UNFINISHED"):
            errors.append(("status", "A new ledger receipt must have status UNFINISHED."))
        if len(str(body.get("name") or "")) > NAME_MAX:
            errors.append(("name", f"size must be between 0 and {NAME_MAX}"))
        try:
            date.fromisoformat(str(body.get("receiptDate")))
        except ValueError:
            errors.append(("receiptDate", "must be a date (yyyy-MM-dd)"))
        transactions = body.get("transactions")
        if not isinstance(transactions, list) or not transactions:
            errors.append(("transactions", "A receipt needs at least one transaction."))
            return errors
        dims = {d["id"]: {i["id"] for i in d["items"]} for d in self.dimensions}
        total = Decimal(0)
        for n, tx in enumerate(transactions):
            at = f"transactions[{n}]"
            if tx.get("transactionType") not in ("ENTRY", "REVERSING_ENTRY"):
                errors.append((f"{at}.transactionType", "must be ENTRY"))
            account = tx.get("account")
            if not account:
                errors.append((f"{at}.account", "must not be null"))
            elif str(account) not in self.accounts:
                errors.append(
                    (f"{at}.account", f"Account {account} does not exist in the chart of accounts.")
                )
            value = tx.get("accountingValue")
            if not isinstance(value, Decimal | int):
                errors.append((f"{at}.accountingValue", "must be a number"))
                continue
            value = Decimal(value)
            total += value
            if len(str(tx.get("description") or "")) > DESCRIPTION_MAX:
                errors.append((f"{at}.description", f"size must be between 0 and {DESCRIPTION_MAX}"))
            allocated: dict[int, Decimal] = {}
            for dv in tx.get("dimensionItemValues") or []:
                dim_id, item_id = dv.get("dimensionId"), dv.get("itemId")
                if dim_id not in dims:
                    errors.append((f"{at}.dimensionItemValues", f"Dimension {dim_id} does not exist."))
                elif item_id not in dims[dim_id]:
                    errors.append(
                        (
                            f"{at}.dimensionItemValues",
                            f"Dimension item {item_id} does not belong to dimension {dim_id}.",
                        )
                    )
                try:
                    allocated[dim_id] = allocated.get(dim_id, Decimal(0)) + Decimal(dv.get("value"))
                except (InvalidOperation, TypeError):
                    errors.append((f"{at}.dimensionItemValues", "value must be a number"))
            for dim_id, amount in allocated.items():
                if amount != value:
                    errors.append(
                        (f"{at}.dimensionItemValues", f"Dimension {dim_id} allocates {amount}, not {value}.")
                    )
        if not errors and total != 0:
            errors.append(("transactions", f"The receipt does not balance: the transactions sum to {total}."))
        return errors

    def _next_version(self) -> str:
        self._version_seq += 1
        return f"{datetime.now().isoformat(timespec='seconds')}.{self._version_seq:06d}"

    def _store(self, rid: int, body: dict[str, Any], status: str) -> dict[str, Any]:
        receipt = {
            "receiptId": rid,
            "type": "JOURNAL",
            "status": status,
            "name": body["name"],
            "receiptDate": body["receiptDate"],
            "vatType": body.get("vatType"),
            "vatStatus": body.get("vatStatus"),
            "accountantsNotes": body.get("accountantsNotes"),
            "transactions": [dict(tx, id=rid * 100 + n) for n, tx in enumerate(body["transactions"])],
            "version": self._next_version(),
        }
        self.receipts[rid] = receipt
        self.writes += 1
        return receipt

    async def _post_receipt(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        errors = self._validate(body, creating=True)
        if errors:
            return _errors(400, *errors)
        rid = self._next_id
        self._next_id += 1
        receipt = self._store(rid, body, "UNFINISHED")
        await self._hang_if_asked()
        return _json(receipt)

    async def _put_receipt(self, request: web.Request) -> web.Response:
        rid = int(request.match_info["id"])
        current = self.receipts.get(rid)
        if current is None:
            return _errors(404, ("receiptId", f"Ledger receipt {rid} not found."))
        body = await self._body(request)
        errors = self._validate(body, creating=False)
        if errors:
            return _errors(400, *errors)
        if self.race_next_put:
            self.race_next_put = False
            current["version"] = self._next_version()
        if body.get("version") != current["version"]:
            # Not documented: optimistic locking conflicts are reported as 409.
            return _errors(409, ("version", "The receipt has been changed since it was read."))
        # Procountor lets approved journals' entries be edited; ledgerops never asks.
        receipt = self._store(rid, body, current["status"])
        await self._hang_if_asked()
        return _json(receipt)

    async def _get_receipt(self, request: web.Request) -> web.Response:
        rid = int(request.match_info["id"])
        receipt = self.receipts.get(rid)
        if receipt is None:
            return _errors(404, ("receiptId", f"Ledger receipt {rid} not found."))
        return _json(receipt)

    async def _approve(self, request: web.Request) -> web.Response:
        rid = int(request.match_info["id"])
        if rid not in self.receipts:
            return _errors(404, ("receiptId", f"Ledger receipt {rid} not found."))
        self.book(rid)
        return web.Response(status=200)

    async def _invalidate(self, request: web.Request) -> web.Response:
        """``PUT /ledgerreceipts/{id}/invalidate``: the API's only way to take a receipt out.

        Procountor's API spec: "Receipt can be invalidated only if it's fiscal year and it's
        accounting period are open. Supported receipt types: JOURNAL"; it deletes none. Not
        documented, so the fake guesses: any status may be invalidated (the fake keeps no
        periods), invalidating one twice is a 400, and the answer is an info message.
        """
        rid = int(request.match_info["id"])
        receipt = self.receipts.get(rid)
        if receipt is None:
            return _errors(404, ("receiptId", f"Ledger receipt {rid} not found."))
        if receipt["status"] == "INVALIDATED":
            return _errors(400, ("status", f"Ledger receipt {rid} is already invalidated."))
        receipt.update(status="INVALIDATED", version=self._next_version())
        self.writes += 1
        await self._hang_if_asked()
        return _json({"message": f"Ledger receipt {rid} invalidated."})

    async def _list_receipts(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            start = date.fromisoformat(q["startDate"])
            end = date.fromisoformat(q["endDate"])
        except (KeyError, ValueError):
            return _errors(400, ("startDate", "startDate and endDate are required (yyyy-MM-dd)."))
        types = set(q.get("types", "").split(",")) - {""}
        previous = int(q.get("previousId", "0") or 0)
        size = min(int(q.get("size", "50")), 200)
        rows = [
            r
            for rid, r in sorted(self.receipts.items())
            if rid > previous
            and start <= date.fromisoformat(r["receiptDate"]) <= end
            and (not types or r["type"] in types)
        ][:size]
        # "basic information": the list does not carry the receipt name.
        basic = [
            {
                "receiptId": r["receiptId"],
                "type": r["type"],
                "status": r["status"],
                "receiptDate": r["receiptDate"],
                "version": r["version"],
            }
            for r in rows
        ]
        return _json({"results": basic, "meta": {"pageSize": size, "resultCount": len(basic)}})


# -- conformance harness -----------------------------------------------------------------
class ProcountorHarness:
    """:class:`tests.connectors.harness.LedgerHarness` over :class:`ProcountorFake`."""

    kinds = ("invoice", "payment", "journal")

    def __init__(self, fake: ProcountorFake, connector: Any):
        self.fake = fake
        self.connector = connector

    def request(self, key: str, **overrides: Any) -> Any:
        from tests.connectors.harness import invoice_request

        # Procountor journal receipts are in the company currency (EUR).
        return replace(invoice_request(key, currency="EUR"), **overrides)

    def unknown_account_request(self, key: str) -> Any:
        return self.request(key, account="9999")

    async def book(self, external_ref: str) -> None:
        self.fake.book(external_ref)

    def timeout_after_next_write(self) -> None:
        self.fake.timeouts_after_write = 1

    def rate_limit_next(self, retry_after: int) -> None:
        self.fake.rate_limit_next = retry_after

    def fail_next_with_5xx(self) -> None:
        self.fake.fail_next = 1

    def records_with_key(self, key: str) -> int:
        return len(self.fake.receipts_with_key(key))

    def amount_of(self, external_ref: str) -> Decimal:
        receipt = self.fake.receipts[int(external_ref)]
        return sum(
            (
                Decimal(t["accountingValue"])
                for t in receipt["transactions"]
                if Decimal(t["accountingValue"]) > 0
            ),
            Decimal(0),
        )

    def posting(self, kind: str, key: str, amount: Decimal) -> Any:
        from tests.connectors.harness import journal_request, payment_request

        if kind == "payment":
            return payment_request(key, amount, "1910", currency="EUR")
        if kind == "journal":
            return journal_request(key, amount, "5000", "2939", currency="EUR")
        return self.request(key, amount=amount)

    def holdings(self, kind: str, key: str) -> list[Any]:
        return [self.amount_of(str(r["receiptId"])) for r in self.fake.receipts_with_key(key)]

    def lose_next_answer(self, mode: str, *, skip: int = 0) -> None:
        self.fake.lost_answer.arm(mode, skip=skip)

    def answers_lost(self) -> int:
        return self.fake.lost_answer.fired

    def held(self, kind: str, key: str) -> int:
        # An invalidated receipt stays visible in Procountor but is out of the books.
        return sum(1 for r in self.fake.receipts_with_key(key) if r["status"] != "INVALIDATED")


def build_connector(fake: ProcountorFake, **overrides: Any) -> Any:
    """A connector wired to the fake, with a short timeout so hangs end quickly."""
    from connectors.procountor.client import ProcountorConnector

    kwargs: dict[str, Any] = dict(
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        api_key=fake.api_key,
        base_url=fake.base_url,
        dimensions={"cost_center": 87540, "cost_unit": 87541},
        creditor_account="2871",
        timeout=0.5,
    )
    kwargs.update(overrides)
    return ProcountorConnector("procountor-fi", **kwargs)


async def procountor_harness() -> AsyncIterator[ProcountorHarness]:
    """Start the fake, yield a harness, stop the fake (HARNESSES entry)."""
    fake = ProcountorFake()
    await fake.start()
    try:
        yield ProcountorHarness(fake, build_connector(fake))
    finally:
        await fake.stop()
