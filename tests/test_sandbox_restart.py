"""A restarted sandbox resumes where it stopped: the ledger's books, the channel, no stray messages.

Before, the sandbox ledger and the channel lived in memory while the database was
on disk: after ``make run`` again the ledger and the channel were empty while the
postings said synced, and a group whose bills had moved on to another error was
posted anew as "Resolved: … (0 documents)".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.local_slack import SandboxServer
from bot.local_slack.channel_file import FILE_NAME
from bot.local_slack.page_banner import demo_banner
from bot.outbox.coverage import GROUP
from bot.sandbox.demo import OUTAGE_BILL
from connectors.base import RecordStatus
from storage.models import ErrorGroup
from storage.queries import outbox
from storage.states import MessageState
from sync.admin import set_mapping
from sync.resync import resync_document
from tests.browser.support import open_sandbox
from tests.support import eventually

INTEGRATION = "sandbox-dk"


def _ledger(server: SandboxServer) -> Any:
    return server.slack.panel.ledger(INTEGRATION)


def _top_messages(server: SandboxServer) -> dict[str, str]:
    """ts -> text of the channel's top-level messages."""
    msgs = server.slack.workspace.messages["C0FINANCE"].values()
    return {m.ts: m.text for m in msgs if not m.thread_ts}


async def _flush(server: SandboxServer) -> None:
    assert server.runtime.notifier is not None
    await server.runtime.notifier.flush()


async def _first_run(url: str) -> tuple[dict[str, tuple[str, RecordStatus]], int, dict[str, str]]:
    """The demo, then the Travel bills re-queued into the outage (their group empties)."""
    async with open_sandbox(url) as server:
        await eventually(lambda: _demo_done(server), timeout=60, message="the demo script")
        await set_mapping(server.runtime.engine, INTEGRATION, "category", "Travel", 9999, "U0ALICE")
        await eventually(
            lambda: _shows(server, "3 bills: Could not connect"), timeout=30, message="the outage group"
        )
        await _flush(server)
        ledger = _ledger(server)
        books = {ref: (v.reference_key, v.status) for ref, v in ledger.vouchers.items()}
        return books, ledger.next_number, _top_messages(server)


async def _demo_done(server: SandboxServer) -> bool:
    return bool(server.demo and server.demo.finished.is_set())


async def _shows(server: SandboxServer, text: str) -> bool:
    return any(text in t for t in _top_messages(server).values())


async def test_a_restart_keeps_the_ledger_and_the_channel(sqlite_url: str) -> None:
    books, next_number, channel = await _first_run(sqlite_url)
    assert any(status is RecordStatus.BOOKED for _, status in books.values())
    folder = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///")).parent
    assert (folder / "sandbox-ledger-sandbox-dk.json").exists() and (folder / FILE_NAME).exists()

    async with open_sandbox(sqlite_url) as server:
        assert server.demo is None  # the database has documents: nothing seeded again
        ledger = _ledger(server)
        assert {ref: (v.reference_key, v.status) for ref, v in ledger.vouchers.items()} == books
        assert ledger.next_number == next_number
        assert ledger.switches.outage  # the demo left it unreachable, and so it still is
        await _flush(server)
        after = _top_messages(server)
        assert set(after) == set(channel), "a restart posted messages anew"
        # The Travel group's bills all moved to the outage group: updated in place, it says
        # it no longer fails this way, without counting none ("Resolved: … (0 documents)").
        shown = json.dumps([m.blocks for m in server.slack.workspace.messages["C0FINANCE"].values()])
        assert "*No longer failing this way:* The category 'Travel'" in shown
        assert "(0 " not in shown
        banner = await demo_banner(server.runtime, server.demo) or ""
        assert banner.startswith("Resumed where the sandbox stopped")
        assert "unreachable on purpose" in banner

        # The books go on from where they were: the next voucher gets the next number.
        server.slack.panel.apply(INTEGRATION, "reachable", True)
        await resync_document(server.runtime.engine, "ap", "bill", OUTAGE_BILL, ["invoice"], "U0ALICE")
        await eventually(
            lambda: _has_voucher(server, f"-{next_number}"), timeout=30, message="DHL's bill resynced"
        )
        keys = [v.reference_key for v in ledger.vouchers.values()]
        assert len(keys) == len(set(keys)), "a restart made a voucher twice"


async def _has_voucher(server: SandboxServer, suffix: str) -> bool:
    return any(ref.endswith(suffix) for ref in _ledger(server).vouchers)


async def test_a_lost_channel_gets_no_stray_resolved_message(sqlite_url: str) -> None:
    """Without the channel file (an older sandbox, a crash), nothing empty is posted anew."""
    _, _, channel = await _first_run(sqlite_url)
    assert any("Travel" in text for text in channel.values())
    folder = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///")).parent
    (folder / FILE_NAME).unlink()

    async with open_sandbox(sqlite_url) as server:
        async with server.runtime.db.sessions() as s:
            travel = await s.scalar(select(ErrorGroup.id).where(ErrorGroup.title.contains("'Travel'")))
        assert travel is not None
        # Its message (showing "Resyncing 1") is updated at start-up, found gone, and then
        # dropped instead of posted anew.
        await eventually(lambda: _settled(server, travel), timeout=30, message="the Travel group's row")
        texts = list(_top_messages(server).values())
        assert not any("Resolved" in t for t in texts), texts


async def _settled(server: SandboxServer, group_id: int) -> bool:
    """Flush the outbox; whether the group's row is gone or posted (not waiting to go)."""
    await _flush(server)
    async with server.runtime.db.sessions() as s:
        rows = (await outbox.rows_for(s, GROUP, [group_id])).get(group_id, [])
    return all(r.state == MessageState.POSTED for r in rows)


async def test_deleting_the_database_starts_the_ledger_and_channel_over(sqlite_url: str) -> None:
    """The three are wiped together: a new database never meets an old ledger or channel."""
    await _first_run(sqlite_url)
    database = Path(sqlite_url.removeprefix("sqlite+aiosqlite:///"))
    for f in database.parent.glob(database.name + "*"):
        f.unlink()  # the database with its -wal and -shm
    async with open_sandbox(sqlite_url, seed=False) as server:  # no demo racing the checks
        assert _top_messages(server) == {}
        assert _ledger(server).next_number == 50001 and not _ledger(server).vouchers
