"""Fixtures: a fresh database per test (SQLite and PostgreSQL), the runtime, the HTTP server."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app import build_runtime
from bot.runtime import Runtime
from connectors.sandbox.books import SandboxBooks
from handlers.routes import build_web_app
from storage.migrate import upgrade
from storage.models import Base
from tests.support import INGEST_TOKEN, FakeClock, make_config, make_env

REQUIRE_ALL = os.environ.get("LEDGEROPS_REQUIRE_ALL") == "1"
PG_URL = os.environ.get("TEST_DATABASE_URL")


def need(condition: bool, why: str) -> None:
    """Skip when ``condition`` fails, unless CI demands everything run (then fail)."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"LEDGEROPS_REQUIRE_ALL=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


_pg_url: str | None = None


async def _pg_database() -> str:
    """A database of our own on the TEST_DATABASE_URL server, created and migrated once.

    Each pytest process gets its own (``ledgerops_test_<pid>``), so runs side by side
    never clobber each other, and the named database itself is left alone.
    """
    global _pg_url
    if _pg_url is None:
        assert PG_URL
        name = f"ledgerops_test_{os.getpid()}"
        admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            await conn.execute(text(f"CREATE DATABASE {name}"))
        await admin.dispose()
        url = PG_URL.rsplit("/", 1)[0] + "/" + name
        await asyncio.to_thread(upgrade, url)
        atexit.register(_drop_pg_database, name)
        _pg_url = url
    return _pg_url


def _drop_pg_database(name: str) -> None:
    async def drop() -> None:
        assert PG_URL
        admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        await admin.dispose()

    asyncio.run(drop())


async def _pg_reset() -> str:
    url = await _pg_database()
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    need(
        bool(PG_URL),
        "TEST_DATABASE_URL is not set (PostgreSQL tests); e.g. "
        "TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test",
    )
    return await _pg_reset()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "test.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def sandbox_books() -> SandboxBooks:
    """The sandbox ledgers every runtime of a test shares (each test starts empty)."""
    return SandboxBooks()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_runtime(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[Any]:
    """Build runtimes on the test database; all are closed at the end."""
    made: list[Runtime] = []

    async def factory(config: Any = None, **kwargs: Any) -> Runtime:
        rt = await build_runtime(
            make_env(db_url),
            config or make_config(),
            migrate=False,
            clock=kwargs.pop("clock", clock),
            sandbox_books=kwargs.pop("sandbox_books", sandbox_books),
            **kwargs,
        )
        made.append(rt)
        return rt

    yield factory
    for rt in made:
        await rt.close()


@pytest.fixture
async def runtime(make_runtime: Any) -> Runtime:
    return await make_runtime()


@pytest.fixture
async def server(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real aiohttp application on a loopback port, with an httpx client."""
    runner = web.AppRunner(build_web_app(runtime))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
    ) as client:
        yield client
    await runner.cleanup()
