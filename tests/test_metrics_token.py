"""``/metrics`` behind ``LEDGEROPS_METRICS_TOKEN`` when one is set; open (as before) when not."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from app import build_runtime
from bot.config import load_environment
from bot.runtime import Runtime
from handlers.routes import build_web_app
from tests.support import FakeClock, make_config, make_env

TOKEN = "scrape-me-2f6c"


async def serve(runtime: Runtime) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_web_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]


@pytest.fixture
async def guarded(db_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    env = make_env(db_url, ledgerops_metrics_token=SecretStr(TOKEN))
    runtime = await build_runtime(env, make_config(), migrate=False, clock=clock)
    runner, url = await serve(runtime)
    try:
        async with httpx.AsyncClient(base_url=url) as http:
            yield http
    finally:
        await runner.cleanup()
        await runtime.close()


async def test_metrics_need_the_token_when_one_is_set(guarded: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
        {"Authorization": "Basic x"},
    ):
        answer = await guarded.get("/metrics", headers=headers)
        assert answer.status_code == 401, headers
        assert "LEDGEROPS_METRICS_TOKEN" in answer.text and "ledgerops_" not in answer.text
    answer = await guarded.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "ledgerops_" in answer.text
    assert (await guarded.get("/healthz")).status_code == 200  # a load balancer's probe needs no token


async def test_metrics_stay_open_without_a_token(server: httpx.AsyncClient) -> None:
    answer = await server.get("/metrics", headers={"Authorization": ""})
    assert answer.status_code == 200 and "ledgerops_" in answer.text


def test_the_token_is_read_from_the_environment() -> None:
    env = load_environment({"LEDGEROPS_METRICS_TOKEN": TOKEN, "DATABASE_URL": "sqlite+aiosqlite:///x.db"})
    assert env.ledgerops_metrics_token is not None
    assert env.ledgerops_metrics_token.get_secret_value() == TOKEN
    blank = load_environment({"LEDGEROPS_METRICS_TOKEN": ""})
    assert blank.ledgerops_metrics_token is None
