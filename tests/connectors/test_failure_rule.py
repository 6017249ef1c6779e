"""The one rule for writes: known only after a definite refusal or a request that never left."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest

from bot.runtime import Runtime
from connectors.base import (
    BookedError,
    ConnectorError,
    NeedsPersonError,
    RateLimitedError,
    TransientError,
    UnknownOutcomeError,
)
from connectors.http import LedgerHttp
from connectors.sandbox.connector import SandboxConnector
from sync.errors import FailureKind, classify
from tests.fakes.lost_answer import MODES
from tests.support import FakeClock, bill
from tests.test_engine_rules import ingest, posting, view

UNCERTAIN, TRANSIENT = FailureKind.UNCERTAIN, FailureKind.TRANSIENT
NEEDS_PERSON, BOOKED = FailureKind.NEEDS_PERSON, FailureKind.BOOKED


@pytest.mark.parametrize(
    ("exc", "during_write", "read"),
    [
        (TransientError("503"), UNCERTAIN, TRANSIENT),  # a connector cannot say "retry" after a write
        (TransientError("refused", nothing_written=True), TRANSIENT, TRANSIENT),
        (RateLimitedError("429", retry_after=7), TRANSIENT, TRANSIENT),
        (NeedsPersonError("account 9999 does not exist"), NEEDS_PERSON, NEEDS_PERSON),
        (BookedError("booked"), BOOKED, BOOKED),
        (UnknownOutcomeError("no answer"), UNCERTAIN, UNCERTAIN),
        (ConnectorError("unclassified"), UNCERTAIN, NEEDS_PERSON),
        (TimeoutError(), UNCERTAIN, TRANSIENT),
        (ConnectionResetError(), UNCERTAIN, TRANSIENT),
        (RuntimeError("a bug"), UNCERTAIN, TRANSIENT),
    ],
)
def test_classify_applies_the_rule(exc: Exception, during_write: FailureKind, read: FailureKind) -> None:
    assert classify(exc, during_write=True).kind is during_write
    assert classify(exc, during_write=False).kind is read


def _ledger(handler: Callable[[httpx.Request], httpx.Response]) -> LedgerHttp:
    client = httpx.AsyncClient(base_url="http://ledger.invalid", transport=httpx.MockTransport(handler))
    return LedgerHttp(client, system="Ledger", record="voucher", name="books")


def _expected(status: int, write: bool) -> FailureKind:
    if status == 429:
        return TRANSIENT
    if 400 <= status < 500:
        return NEEDS_PERSON  # a refusal that explains itself: nothing was written
    return UNCERTAIN if write else TRANSIENT


@pytest.mark.parametrize("write", [True, False])
@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504])
async def test_status_times_write(status: int, write: bool) -> None:
    api = _ledger(lambda _r: httpx.Response(status, headers={"Retry-After": "7"}, text="<html>x</html>"))
    with pytest.raises(ConnectorError) as err:
        await api.send("POST" if write else "GET", "vouchers", body={"amount": Decimal("1.00")}, write=write)
    failure = classify(err.value, during_write=write)
    assert failure.kind is _expected(status, write)
    assert "<html>" not in failure.message  # a gateway page is no message for a person
    if status == 429:
        assert failure.retry_after == 7 and failure.rate_limited


@pytest.mark.parametrize("write", [True, False])
@pytest.mark.parametrize(
    ("error", "never_left"),
    [
        (httpx.ConnectError, True),  # refused, DNS
        (httpx.ConnectTimeout, True),
        (httpx.PoolTimeout, True),
        (httpx.ReadTimeout, False),
        (httpx.WriteTimeout, False),
        (httpx.ReadError, False),
        (httpx.RemoteProtocolError, False),  # dropped without an answer
    ],
)
async def test_transport_failure_times_write(
    error: type[httpx.RequestError], never_left: bool, write: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("lost", request=request)

    with pytest.raises(ConnectorError) as err:
        await _ledger(fail).send("POST" if write else "GET", "vouchers", write=write)
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no headers leak
    expected = UNCERTAIN if write and not never_left else TRANSIENT
    assert classify(err.value, during_write=write).kind is expected


async def test_an_unreadable_answer_to_a_write_is_unknown() -> None:
    api = _ledger(lambda _r: httpx.Response(201, text="<html>saved</html>"))
    resp = await api.send("POST", "vouchers", write=True)
    assert resp is not None
    with pytest.raises(UnknownOutcomeError):
        api.read(resp, write=True)


@pytest.fixture
async def sandbox(runtime: Runtime) -> AsyncIterator[SandboxConnector]:
    yield SandboxConnector.from_settings("books-dk", {"books": runtime.sandbox_books})


async def _settle(runtime: Runtime, clock: FakeClock) -> None:
    await runtime.worker.run_until_idle()
    clock.advance(3600)  # past any backoff
    await runtime.worker.run_until_idle()


@pytest.mark.parametrize("mode", MODES)
async def test_the_worker_books_one_voucher_whatever_answer_is_lost(
    runtime: Runtime, clock: FakeClock, sandbox: SandboxConnector, mode: str
) -> None:
    """The ledger saves the voucher and the answer is lost (5xx, timeout, drop): still one."""
    ledger = sandbox.ledger
    await ingest(runtime, bill("L-1"))
    ledger.switches.lost_answer = mode
    await _settle(runtime, clock)
    assert posting(await view(runtime, "L-1"))["state"] == "synced"
    assert [v.amount for v in ledger.vouchers.values()] == [Decimal("1250.00")]
    await ingest(runtime, bill("L-1", version=2, amount="1400.00"))
    ledger.switches.lost_answer = mode
    await _settle(runtime, clock)
    assert posting(await view(runtime, "L-1"))["state"] == "synced"
    assert [v.amount for v in ledger.vouchers.values()] == [Decimal("1400.00")]
    assert ledger.answers_lost == 2
