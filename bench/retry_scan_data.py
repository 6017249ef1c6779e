"""The data ``bench/retry_scan.py`` loads: a million postings of ten companies, written
straight through the driver (SQLite) or COPY-like batches (PostgreSQL)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Connection

from storage.db import Database
from storage.models import Posting
from storage.states import PostingState
from sync.config import IntegrationConfig, Mappings
from sync.vouchers import idempotency_key

COMPANIES = 10

POSTING_COLUMNS = (
    "id",
    "document_id",
    "integration_id",
    "kind",
    "slot",
    "state",
    "desired_hash",
    "synced_hash",
    "external_ref",
    "idempotency_key",
    "attempts",
    "next_attempt_at",
    "company_key",
    "queued_at",
    "lookup_first",
    "force",
    "last_error",
    "error_code",
    "updated_at",
)
DOCUMENT_COLUMNS = (
    "id",
    "source",
    "kind",
    "external_id",
    "version",
    "integration_id",
    "status",
    "data",
    "doc_date",
    "received_at",
    "updated_at",
)


# -- the data -------------------------------------------------------------------------------


def companies() -> list[str]:
    return [f"co-{n:02d}" for n in range(COMPANIES)]


def integration_configs() -> list[IntegrationConfig]:
    return [
        IntegrationConfig(
            name=n,
            kind="sandbox",
            payment_account=5820,
            mappings=Mappings(categories={"Office supplies": 2800}),
        )
        for n in companies()
    ]


def bill_data(i: int) -> dict[str, Any]:
    return {
        "supplier": {"number": 3001, "name": "Kontorland A/S"},
        "invoice_number": f"INV-{i}",
        "amount": "1250.00",
        "currency": "DKK",
        "date": "2026-11-02",
        "due_date": "2026-12-02",
        "category": "Office supplies",
        "approved": True,
        "paid": {"date": "2026-11-20", "amount": "1250.00"},
    }


def state_of(doc: int, docs: int) -> str:
    """10 % of documents failed, 1 % retrying and due, 1 % retrying later, the rest synced."""
    share = doc * 100 // docs
    if share < 10:
        return PostingState.FAILED
    if share < 11:
        return "retrying_due"
    if share < 12:
        return PostingState.RETRYING
    return PostingState.SYNCED


def rows(
    docs: int, now: datetime, integration_ids: dict[str, int], *, sqlite: bool
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """(document, [its two postings]) in the column orders above, one bill at a time.

    For SQLite, values come as the driver stores them (naive-UTC text, as
    ``storage.models.UTCDateTime`` writes them; JSON as text); PostgreSQL's COPY
    takes Python values (JSON as text too).
    """
    names = companies()
    created = now - timedelta(days=30)
    # the few timestamps, converted once (not a million times)
    stamp = {
        t: _sqlite_value(t) if sqlite else t
        for t in (created, now - timedelta(seconds=30), now + timedelta(minutes=10))
    }
    day = _sqlite_value(date(2026, 11, 2)) if sqlite else date(2026, 11, 2)
    for i in range(docs):
        company = names[i % COMPANIES]
        iid = integration_ids[company]
        doc_id = i + 1
        kind = state_of(i, docs)
        state = PostingState.RETRYING if kind == "retrying_due" else kind
        due = (
            now - timedelta(seconds=30)
            if kind == "retrying_due"
            else now + timedelta(minutes=10)
            if kind == PostingState.RETRYING
            else created
        )
        error = (
            "Could not connect to the ledger (connection refused)."
            if state == PostingState.RETRYING
            else "Account 2800 does not exist."
            if state == PostingState.FAILED
            else None
        )
        code = (
            None
            if error is None
            else "unreachable"
            if state == PostingState.RETRYING
            else "account_not_found"
        )
        synced = state == PostingState.SYNCED
        document = (
            doc_id,
            "ap",
            "bill",
            f"B-{i}",
            1,
            iid,
            "received",
            json.dumps(bill_data(i)),
            day,
            stamp[created],
            stamp[created],
        )
        postings = []
        for n, slot in enumerate(("invoice", "payment")):
            h = f"{i:032x}{n:032x}"
            postings.append(
                (
                    2 * i + n + 1,
                    doc_id,
                    iid,
                    slot,
                    slot,
                    str(state),
                    h,
                    h if synced else None,
                    f"2026-{i * 2 + n}" if synced else None,
                    idempotency_key(company, "ap", "bill", f"B-{i}", slot),
                    1,
                    stamp[due],
                    company,
                    stamp[created],
                    False,
                    False,
                    error,
                    code,
                    stamp[created],
                )
            )
        yield document, postings


# -- loading --------------------------------------------------------------------------------


def _sqlite_value(v: Any) -> Any:
    if isinstance(v, datetime):  # stored naive UTC, as storage.models.UTCDateTime does
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, dict):
        return json.dumps(v)
    return v


def drop_indexes(conn: Connection) -> None:
    """A bulk load builds secondary indexes once at the end instead of row by row."""
    for ix in Posting.__table__.indexes:
        ix.drop(conn)


def create_indexes(conn: Connection) -> None:
    for ix in Posting.__table__.indexes:
        ix.create(conn)


def load_sqlite(conn: Connection, docs: int, now: datetime, ids: dict[str, int]) -> None:
    """executemany in chunks: the whole table never sits in memory."""
    drop_indexes(conn)
    dsql = (
        f"INSERT INTO documents ({', '.join(DOCUMENT_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(DOCUMENT_COLUMNS))})"
    )
    psql = (
        f"INSERT INTO postings ({', '.join(POSTING_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(POSTING_COLUMNS))})"
    )
    dbuf: list[tuple[Any, ...]] = []
    pbuf: list[tuple[Any, ...]] = []
    for d, ps in rows(docs, now, ids, sqlite=True):
        dbuf.append(d)
        pbuf.extend(ps)
        if len(dbuf) >= 20_000:
            conn.exec_driver_sql(dsql, dbuf)
            conn.exec_driver_sql(psql, pbuf)
            dbuf, pbuf = [], []
    if dbuf:
        conn.exec_driver_sql(dsql, dbuf)
        conn.exec_driver_sql(psql, pbuf)
    create_indexes(conn)


async def load_postgres(db: Database, docs: int, now: datetime, ids: dict[str, int]) -> None:
    """COPY (asyncpg's binary copy) in chunks: the whole table never sits in memory."""
    async with db.engine.connect() as conn:
        await conn.run_sync(drop_indexes)
        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection
        # the rows are consistent by construction: skip the per-row foreign-key triggers
        # during the load (needs a superuser, as a bench database's owner usually is)
        await apg.execute("SET session_replication_role = replica")
        dbuf: list[tuple[Any, ...]] = []
        pbuf: list[tuple[Any, ...]] = []

        async def flush() -> None:
            await apg.copy_records_to_table("documents", records=dbuf, columns=DOCUMENT_COLUMNS)
            await apg.copy_records_to_table("postings", records=pbuf, columns=POSTING_COLUMNS)
            dbuf.clear()
            pbuf.clear()

        for d, ps in rows(docs, now, ids, sqlite=False):
            dbuf.append(d)
            pbuf.extend(ps)
            if len(dbuf) >= 20_000:
                await flush()
        if dbuf:
            await flush()
        await apg.execute("SET session_replication_role = DEFAULT")
        await apg.execute("SELECT setval('documents_id_seq', (SELECT max(id) FROM documents))")
        await apg.execute("SELECT setval('postings_id_seq', (SELECT max(id) FROM postings))")
        await conn.run_sync(create_indexes)
        await conn.commit()
        # autovacuum would do this a minute after a load like this; the plans assume it
        await apg.execute("ANALYZE documents")
        await apg.execute("ANALYZE postings")
