"""Every connector, sandbox included, keeps the same promises to the engine."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest

from connectors.base import (
    BookedError,
    ConnectorError,
    NeedsPersonError,
    PostingRequest,
    RateLimitedError,
    RecordStatus,
    UnknownOutcomeError,
)
from sync.errors import FailureKind, classify
from tests.connectors.harness import (
    LedgerHarness,
    expected_holding,
    sync_as_the_worker,
    withdraw_as_the_worker,
    withdrawal,
)
from tests.fakes.lost_answer import MODES

FIRST, CHANGED = Decimal("1250.00"), Decimal("1300.50")


async def test_create_then_status_is_draft(harness: LedgerHarness) -> None:
    result = await harness.connector.create(harness.request("LO-CONF0001"))
    assert result.external_ref and isinstance(result.external_ref, str)  # PostgreSQL stores text
    status = await harness.connector.status(result.external_ref, harness.request("LO-CONF0001"))
    assert status is RecordStatus.DRAFT
    assert harness.records_with_key("LO-CONF0001") == 1


async def test_update_of_a_draft_changes_it_in_place(harness: LedgerHarness) -> None:
    created = await harness.connector.create(harness.request("LO-CONF0002"))
    changed = harness.request("LO-CONF0002", amount=Decimal("1300.50"))
    updated = await harness.connector.update(created.external_ref, changed)
    assert harness.amount_of(updated.external_ref) == Decimal("1300.50")
    assert harness.records_with_key("LO-CONF0002") == 1


async def test_booked_record_is_refused_and_nothing_is_created(harness: LedgerHarness) -> None:
    created = await harness.connector.create(harness.request("LO-CONF0003"))
    await harness.book(created.external_ref)
    req = harness.request("LO-CONF0003", amount=Decimal("999.00"))
    assert await harness.connector.status(created.external_ref, req) is RecordStatus.BOOKED
    with pytest.raises(BookedError):
        await harness.connector.update(created.external_ref, req)
    assert harness.records_with_key("LO-CONF0003") == 1


async def test_timeout_after_write_is_found_without_a_duplicate(harness: LedgerHarness) -> None:
    req = harness.request("LO-CONF0004")
    harness.timeout_after_next_write()
    with pytest.raises((UnknownOutcomeError, TimeoutError)):
        await harness.connector.create(req)
    found = await harness.connector.find(req)
    assert found is not None and found.external_ref
    assert harness.records_with_key("LO-CONF0004") == 1


async def test_find_of_an_unknown_key_is_none(harness: LedgerHarness) -> None:
    assert await harness.connector.find(harness.request("LO-NEVERSENT")) is None


async def test_unknown_account_needs_a_person_with_the_ledger_text(harness: LedgerHarness) -> None:
    with pytest.raises(NeedsPersonError) as err:
        await harness.connector.create(harness.unknown_account_request("LO-CONF0005"))
    assert "9999" in err.value.message
    assert harness.records_with_key("LO-CONF0005") == 0


async def test_429_is_rate_limited_with_retry_after(harness: LedgerHarness) -> None:
    harness.rate_limit_next(7)
    with pytest.raises(RateLimitedError) as err:
        await harness.connector.create(harness.request("LO-CONF0006"))
    assert err.value.retry_after == pytest.approx(7, abs=1)


async def test_a_503_to_a_write_is_an_unknown_outcome_and_the_retry_writes_once(
    harness: LedgerHarness,
) -> None:
    # A 503 may come from behind the point where the record was saved: only a lookup can tell.
    req = harness.request("LO-CONF0007")
    harness.fail_next_with_5xx()
    with pytest.raises(ConnectorError) as err:
        await harness.connector.create(req)
    assert classify(err.value, during_write=True).kind is FailureKind.UNCERTAIN
    assert harness.records_with_key("LO-CONF0007") == 0
    await sync_as_the_worker(harness.connector, req)
    assert harness.records_with_key("LO-CONF0007") == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_lost_answer_to_a_create_leaves_exactly_one_record(harness: LedgerHarness, mode: str) -> None:
    """The ledger saves the record, then answers 5xx, times out or drops: one record, right amount."""
    for kind in harness.kinds:
        for step in count():  # lose the answer of each write the create makes, in turn
            key = f"LO-CREATE-{kind}-{step:02d}"
            lost = harness.answers_lost()
            harness.lose_next_answer(mode, skip=step)
            await sync_as_the_worker(harness.connector, harness.posting(kind, key, FIRST))
            assert harness.holdings(kind, key) == [expected_holding(kind, FIRST)], (kind, step)
            if harness.answers_lost() == lost:
                harness.lose_next_answer("")
                break
        assert step > 0, f"no answer to a {kind} create was lost"


@pytest.mark.parametrize("mode", MODES)
async def test_a_lost_answer_to_an_update_leaves_exactly_one_record(
    harness: LedgerHarness, mode: str
) -> None:
    """Between or after an update's steps (delete then repost, versioned PUT): never lost, never two."""
    for kind in harness.kinds:
        for step in count():
            key = f"LO-UPDATE-{kind}-{step:02d}"
            first = harness.posting(kind, key, FIRST)
            created = await harness.connector.create(first)
            lost = harness.answers_lost()
            harness.lose_next_answer(mode, skip=step)
            changed = harness.posting(kind, key, CHANGED)
            await sync_as_the_worker(harness.connector, changed, ref=created.external_ref, synced=first)
            assert harness.holdings(kind, key) == [expected_holding(kind, CHANGED)], (kind, step)
            if harness.answers_lost() == lost:
                harness.lose_next_answer("")
                break
        assert step > 0, f"no answer to a {kind} update was lost"


# -- withdrawal (issue 10.3): a draft the document no longer needs is deleted ----------------
async def _made(harness: LedgerHarness, kind: str, key: str) -> tuple[PostingRequest, str]:
    """Create a record; the request the worker withdraws it with, and its reference."""
    request = harness.posting(kind, key, FIRST)
    return withdrawal(request), (await harness.connector.create(request)).external_ref


async def test_delete_of_a_draft_removes_it_and_nothing_else(harness: LedgerHarness) -> None:
    for kind in harness.kinds:
        other, _ = await _made(harness, kind, f"LO-KEEP-{kind}")
        kept = harness.holdings(kind, other.idempotency_key)
        req, ref = await _made(harness, kind, f"LO-DELETE-{kind}")
        await harness.connector.delete(ref, req)
        assert harness.held(kind, req.idempotency_key) == 0, kind
        assert await harness.connector.status(ref, req) is RecordStatus.MISSING, kind
        assert harness.holdings(kind, other.idempotency_key) == kept, kind


async def test_delete_of_a_booked_record_is_refused_and_it_stays(harness: LedgerHarness) -> None:
    for kind in harness.kinds:
        if kind == "relation":
            continue  # a debtor or creditor is never booked
        req, ref = await _made(harness, kind, f"LO-BOOKED-{kind}")
        await harness.book(ref)
        with pytest.raises(BookedError):
            await harness.connector.delete(ref, req)
        assert harness.held(kind, req.idempotency_key) == 1, kind
        assert await harness.connector.status(ref, req) is RecordStatus.BOOKED, kind


async def test_delete_of_a_record_already_gone_is_no_error(harness: LedgerHarness) -> None:
    for kind in harness.kinds:
        req, ref = await _made(harness, kind, f"LO-GONE-{kind}")
        await harness.connector.delete(ref, req)
        await harness.connector.delete(ref, req)  # a second time: it is gone already
        assert harness.held(kind, req.idempotency_key) == 0, kind


@pytest.mark.parametrize("mode", MODES)
async def test_a_lost_answer_to_a_delete_ends_with_the_record_gone(harness: LedgerHarness, mode: str) -> None:
    """The ledger applies a delete step, then answers 5xx, times out or drops: status first,
    then delete again (the worker's rule) ends with the record gone and nothing else touched."""
    for kind in harness.kinds:
        for step in count():  # lose the answer of each write the delete makes, in turn
            other, _ = await _made(harness, kind, f"LO-KEEP-{kind}-{step:02d}")
            kept = harness.holdings(kind, other.idempotency_key)
            req, ref = await _made(harness, kind, f"LO-WITHDRAW-{kind}-{step:02d}")
            lost = harness.answers_lost()
            harness.lose_next_answer(mode, skip=step)
            assert await withdraw_as_the_worker(harness.connector, req, ref) is RecordStatus.MISSING
            assert harness.held(kind, req.idempotency_key) == 0, (kind, step)
            assert harness.holdings(kind, other.idempotency_key) == kept, (kind, step)
            if harness.answers_lost() == lost:
                harness.lose_next_answer("")
                break
        assert step > 0, f"no answer to a {kind} delete was lost"
