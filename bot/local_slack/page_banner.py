"""The line above the ledger panel: what the demo does now, or what to try next.

Rebuilt from the database and the sandbox ledger each time the page asks, so it
follows what people did: once DHL's bill is resynced it no longer says the bill
failed, and after a restart it says what was resumed.
"""

from __future__ import annotations

from bot.runtime import Runtime
from bot.sandbox.demo import OUTAGE_BILL, OUTAGE_SUPPLIER, SOURCE, DemoScript
from connectors.sandbox.connector import SandboxConnector
from storage.queries import reads
from storage.states import PostingState

UNREACHABLE = (
    f"The ledger is unreachable on purpose, so {OUTAGE_SUPPLIER}'s bill failed. "
    "Make it reachable, then press Resync invoice posting on that message."
)
REACHABLE_AGAIN = (
    f"The ledger is reachable again: press Resync invoice posting on {OUTAGE_SUPPLIER}'s "
    "message to send its bill."
)
UNREACHABLE_NOW = "The ledger is unreachable: postings wait and retry until it is reachable again."
READY = (
    "Demo ready: map a category with /ledger map, book a voucher, or make the ledger "
    "slow or unreachable and watch the channel."
)
KEPT = "Resumed where the sandbox stopped (delete {folder}/ to start over). "
NOT_KEPT = (
    "This database already had documents, so no demo was seeded; the sandbox ledger and "
    "the channel are kept only beside a SQLite file, so they started empty. "
)


async def demo_banner(runtime: Runtime, script: DemoScript | None) -> str | None:
    """The banner for now: the demo's step while it plays, else what the books show."""
    if script is not None and script.status() is not None:
        return script.status()
    name = next((n for n, c in runtime.engine.integrations.items() if c.kind == "sandbox"), None)
    if name is None:
        return None
    connector = runtime.engine.connector(name)
    assert isinstance(connector, SandboxConnector)
    unreachable = connector.ledger.switches.outage
    async with runtime.db.sessions() as s:
        outage_bill = await reads.posting_of_document(s, SOURCE, "bill", OUTAGE_BILL, "invoice")
    failed = outage_bill is not None and outage_bill.state == PostingState.FAILED
    if failed:
        line = UNREACHABLE if unreachable else REACHABLE_AGAIN
    else:
        line = UNREACHABLE_NOW if unreachable else READY
    if script is None:
        folder = runtime.sandbox_books.folder
        return (NOT_KEPT if folder is None else KEPT.format(folder=folder.name)) + line
    return line
