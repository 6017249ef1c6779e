"""Error groups: they close by themselves, a muted one stays quiet, give-ups are grouped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.ops.scheduler import SchedulerConfig, Sweeps
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from storage.models import ErrorGroup, Posting
from storage.queries.groups import mute_group
from sync.admin import set_mapping
from sync.give_up import GAVE_UP
from sync.resync import ignore_posting
from tests.slack_harness import ALICE, SlackHarness, slack_harness
from tests.support import FakeClock, bill
from tests.test_engine_rules import ingest, posting, view


async def groups(rt: Runtime) -> list[ErrorGroup]:
    async with rt.db.sessions() as s:
        return list((await s.scalars(select(ErrorGroup).order_by(ErrorGroup.id))).all())


async def test_group_closes_when_its_postings_are_synced_or_booked(
    runtime: Runtime, sandbox_books: SandboxBooks
) -> None:
    await ingest(runtime, bill("X-1"), bill("X-2"))
    await runtime.worker.run_until_idle()
    await ingest(
        runtime, bill("X-1", version=2, category="Travel"), bill("X-2", version=2, category="Travel")
    )
    await runtime.worker.run_until_idle()
    [group] = await groups(runtime)
    assert group.open and group.error_code == "unmapped_category"
    sandbox_books["books-dk"].book(posting(await view(runtime, "X-1"))["external_ref"])
    await set_mapping(runtime.engine, "books-dk", "category", "Travel", 2750, ALICE)
    await runtime.worker.run_until_idle()
    assert posting(await view(runtime, "X-1"))["state"] == "booked"
    assert posting(await view(runtime, "X-2"))["state"] == "synced"
    [group] = await groups(runtime)
    assert not group.open


async def test_group_closes_when_its_last_open_posting_is_ignored(runtime: Runtime) -> None:
    await ingest(runtime, bill("Y-1", category="Meals"), bill("Y-2", category="Meals"))
    await runtime.worker.run_until_idle()
    async with runtime.db.sessions() as s:
        ids = list((await s.scalars(select(Posting.id).order_by(Posting.id))).all())
    await ignore_posting(runtime.engine, ids[0], ALICE)
    [group] = await groups(runtime)
    assert group.open  # one still needs a person
    await ignore_posting(runtime.engine, ids[1], ALICE)
    [group] = await groups(runtime)
    assert not group.open


async def leave_all_retrying_like_the_first(runtime: Runtime) -> None:
    """The first posting's write lost its answer; the company's queue waits behind it, so
    the others are put where a day of such answers leaves them: retrying, look-up first."""
    async with runtime.db.sessions() as s, s.begin():
        first = (await s.scalars(select(Posting).order_by(Posting.id))).first()
        assert first is not None and first.state == "retrying"
        await s.execute(
            update(Posting)
            .where(Posting.id != first.id)
            .values(
                state="retrying",
                attempts=1,
                lookup_first=True,
                last_error=first.last_error,
                error_code=first.error_code,
                next_attempt_at=first.next_attempt_at,
            )
        )


async def test_give_up_puts_postings_into_one_gave_up_group(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    runtime.engine.connector("books-dk")
    sandbox_books["books-dk"].switches.timeouts_after_write = 1
    await ingest(runtime, bill("G-1"), bill("G-2"), bill("G-3"))
    await runtime.worker.run_until_idle()
    await leave_all_retrying_like_the_first(runtime)
    clock.advance(25 * 3600)
    sweeps = Sweeps(runtime.engine, SchedulerConfig(give_up_after_hours=24))
    assert await sweeps.give_up_old() == "3 given up"
    [group] = await groups(runtime)
    assert group.error_code == GAVE_UP and group.repetitions == 3
    assert group.title == "Still failing after 24 hours: The ledger did not answer within 30 s."
    async with runtime.db.sessions() as s:
        rows = (await s.execute(select(Posting.state, Posting.error_group_id, Posting.error_code))).all()
    assert set(rows) == {("failed", group.id, GAVE_UP)}


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        h.runtime.engine.connector("books-dk")
        yield h


async def test_given_up_postings_show_as_one_group_message(
    slack: SlackHarness, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].switches.timeouts_after_write = 1
    await slack.ingest(bill("G-1"), bill("G-2"), bill("G-3"))
    await slack.runtime.worker.run_until_idle()
    await leave_all_retrying_like_the_first(slack.runtime)
    clock.advance(25 * 3600)
    await Sweeps(slack.runtime.engine, SchedulerConfig(give_up_after_hours=24)).give_up_old()
    await slack.deliver()
    [post] = slack.fake.posts()
    assert post.args["text"].startswith(
        "3 bills: Still failing after 24 hours: The ledger did not answer within 30 s."
    )


async def test_a_muted_group_stays_quiet_until_muted_until(
    slack: SlackHarness, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("M-1"), bill("M-2"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    assert slack.fake.messages[ts]["text"].startswith("2 bills: Account 2800 does not exist.")
    [group] = await groups(slack.runtime)
    until = clock.now + timedelta(hours=24)
    await slack.runtime.db.run(lambda conn: mute_group(conn, group.id, until))

    await slack.ingest(bill("M-3"), bill("M-4"))  # the same failure, twice more
    await slack.runtime.worker.run_until_idle()
    await slack.deliver(within=23 * 3600)
    assert slack.fake.of("chat.update") == [] and len(slack.fake.posts()) == 1
    assert slack.fake.messages[ts]["text"].startswith("2 bills")  # quiet: not even updated

    clock.advance(24 * 3600)
    await slack.deliver()  # the mute ended: the message catches up, once
    assert len(slack.fake.of("chat.update", ts=ts)) == 1
    assert slack.fake.messages[ts]["text"].startswith("4 bills: Account 2800 does not exist.")
    assert len(slack.fake.posts()) == 1


async def test_a_muted_group_gets_no_message_of_its_own_either(
    slack: SlackHarness, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    sandbox_books["books-dk"].accounts.pop("2800")
    await slack.ingest(bill("Q-1"))
    await slack.runtime.worker.run_until_idle()
    [group] = await groups(slack.runtime)
    until = clock.now + timedelta(hours=1)
    await slack.runtime.db.run(lambda conn: mute_group(conn, group.id, until))
    await slack.ingest(bill("Q-2"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver(within=50 * 60)
    assert slack.fake.posts() == []
    clock.advance(3600)
    await slack.deliver()
    [post] = slack.fake.posts()
    assert post.args["text"].startswith("2 bills: Account 2800 does not exist.")


async def test_resync_all_on_a_muted_group_ends_the_mute(
    slack: SlackHarness, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    books = sandbox_books["books-dk"]
    books.accounts.pop("2800")
    await slack.ingest(bill("U-1"), bill("U-2"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    ts = slack.fake.ts_of(slack.fake.posts()[0])
    [group] = await groups(slack.runtime)
    await slack.runtime.db.run(lambda conn: mute_group(conn, group.id, clock.now + timedelta(hours=24)))
    books.accounts["2800"] = "Office supplies"
    await slack.press_button(ts, "ledgerops.resync_group", user=ALICE)
    await slack.settle_clicks()
    await slack.runtime.worker.run_until_idle()
    await slack.deliver(within=60)
    assert slack.fake.messages[ts]["text"].startswith("Resolved: Account 2800 does not exist.")
    [group] = await groups(slack.runtime)
    assert group.muted_until is None


async def test_the_age_limit_gives_nothing_up_while_its_ledger_is_out(
    runtime: Runtime, clock: FakeClock, sandbox_books: SandboxBooks
) -> None:
    from storage.models import Outage

    runtime.engine.connector("books-dk")
    sandbox_books["books-dk"].switches.timeouts_after_write = 1
    await ingest(runtime, bill("O-1"), bill("O-2"))
    await runtime.worker.run_until_idle()
    await leave_all_retrying_like_the_first(runtime)
    iid = runtime.engine.integration_ids["books-dk"]
    async with runtime.db.sessions() as s, s.begin():
        s.add(
            Outage(integration_id=iid, checked_attempt_id=0, waiting=2, since=clock.now, updated_at=clock.now)
        )
    clock.advance(25 * 3600)
    sweeps = Sweeps(runtime.engine, SchedulerConfig(give_up_after_hours=24))
    assert await sweeps.give_up_old() == "0 given up"  # they wait with the outage
    assert await groups(runtime) == []
