"""Group commit on SQLite: batched transactions keep each caller's own outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, insert, select

from storage.db import connect
from storage.models import Lease

NOW = datetime(2026, 11, 22, tzinfo=UTC)


async def test_one_failing_transaction_does_not_undo_the_others(sqlite_url: str) -> None:
    db = connect(sqlite_url)
    try:

        def add(key: str) -> str:
            def fn(conn: Connection) -> str:
                conn.execute(insert(Lease).values(key=key, holder="h", expires_at=NOW))
                if key == "bad":
                    raise ValueError("refused")
                return key

            return fn  # type: ignore[return-value]

        keys = [f"k{i}" for i in range(9)] + ["bad"]
        results = await asyncio.gather(
            *(db.run(add(k)) for k in keys),  # type: ignore[arg-type]
            return_exceptions=True,
        )
        assert results[:9] == keys[:9]
        assert isinstance(results[9], ValueError)
        async with db.sessions() as s:
            stored = set((await s.scalars(select(Lease.key))).all())
        assert stored == set(keys[:9])
        # a unique clash (a real database error) reaches only its own caller, too
        with pytest.raises(Exception, match="UNIQUE"):
            await db.run(add("k1"))  # type: ignore[arg-type]
        async with db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Lease)) == 9
    finally:
        await db.dispose()
