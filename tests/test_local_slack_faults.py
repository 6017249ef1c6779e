"""The stand-in's fault switches: off in the sandbox, and a Slack that is down keeps its port."""

from __future__ import annotations

import socket

import httpx
import pytest

from bot.local_slack import SandboxServer
from bot.local_slack.faults import Planned
from tests.browser.support import open_sandbox
from tests.fakes.slack import BOT_TOKEN, FakeSlack

AUTH = {"Authorization": f"Bearer {BOT_TOKEN}"}


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


async def test_down_refuses_connections_and_no_one_else_gets_the_port() -> None:
    fake = FakeSlack()
    await fake.start()
    try:
        port = fake.site.port
        await fake.go_down()
        assert refused(port)
        other = socket.socket()
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))  # another test process cannot take it meanwhile
        other.close()
        await fake.come_back()
        assert fake.site.port == port
        async with httpx.AsyncClient(base_url=fake.url) as http:
            answer = await http.post(
                "chat.postMessage", json={"channel": "C0FINANCE", "text": "hi"}, headers=AUTH
            )
        assert answer.json()["ok"] is True and len(fake.posts()) == 1
    finally:
        await fake.stop()


async def test_a_lost_answer_is_stored_but_not_ok_and_429_says_when() -> None:
    fake = FakeSlack()
    await fake.start()
    fake.plan("chat.postMessage", Planned(status=500, do_it=True), Planned(status=429, retry_after=7))
    try:
        async with httpx.AsyncClient(base_url=fake.url) as http:
            body = {"channel": "C0FINANCE", "text": "hi"}
            lost = await http.post("chat.postMessage", json=body, headers=AUTH)
            limited = await http.post("chat.postMessage", json=body, headers=AUTH)
        assert lost.status_code == 500 and len(fake.messages) == 1 and fake.posts() == []
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
        assert [c.status for c in fake.calls] == [500, 429]
    finally:
        await fake.stop()


async def test_the_sandbox_has_no_faults_and_keeps_no_call_log(sqlite_url: str) -> None:
    server: SandboxServer
    async with open_sandbox(sqlite_url, seed=False) as server:
        api = server.slack.api
        assert api.calls is None
        assert not api.faults.down and api.faults.spell is None and api.faults.plans == {}
