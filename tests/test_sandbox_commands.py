"""What a person runs around the sandbox: ``make run``'s first-run line, ``python app.py
status`` beside a running sandbox, and the demo banner following what they did."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

import app
from bot.config import Environment
from bot.local_slack import SandboxServer
from bot.local_slack.page_banner import REACHABLE_AGAIN, READY, UNREACHABLE
from bot.sandbox.demo import OUTAGE_BILL, SOURCE
from bot.sandbox.settings import sandbox_environment
from storage.queries import reads
from storage.states import PostingState
from sync.resync import resync_document
from tests.browser.support import open_sandbox
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[1]
FIRST_RUN = "installing (first run only)"


def _make_run_dry(venv: Path) -> str:
    """What ``make run`` would print and do, with the venv at ``venv`` (``make -n``)."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), f"VENV={venv}", "run"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_make_run_says_it_is_installing_on_the_first_run_only(tmp_path: Path) -> None:
    fresh = _make_run_dry(tmp_path / "no-venv-yet")
    assert FIRST_RUN in fresh
    assert fresh.index(FIRST_RUN) < fresh.index("-m venv")  # before the minute of silence
    installed = tmp_path / "venv"
    installed.mkdir()
    stamp = installed / ".installed"
    stamp.touch()
    # newer than pyproject.toml: the stamp says the install is done
    later = (ROOT / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (later, later))
    assert FIRST_RUN not in _make_run_dry(installed)


@pytest.fixture
def sandbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory as ``make run`` sees it: no ledgerops.toml, no settings, no Slack token."""
    monkeypatch.chdir(tmp_path)
    for name in (
        "LEDGEROPS_CONFIG",
        "DATABASE_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


async def _run_the_demo() -> dict[str, int]:
    """The sandbox on its own data folder (as ``python app.py``), until its demo played."""
    env = sandbox_environment(Environment())
    async with open_sandbox(env.database_url) as server:
        await eventually(lambda: _demo_done(server), timeout=60, message="the demo script")
        panel = await server.slack.panel.snapshot()
    return dict(panel["ledgers"][0]["postings"])


async def _demo_done(server: SandboxServer) -> bool:
    return bool(server.demo and server.demo.finished.is_set())


async def test_status_reads_the_sandbox_data(sandbox_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["status"]) == 2
    assert "start the sandbox with `make run`" in capsys.readouterr().err
    assert not (sandbox_dir / "sandbox-data").exists()  # asking made nothing

    counts = await _run_the_demo()
    assert counts["failed"] and counts["synced"]
    # main() runs its own event loop: from a thread, as on the command line
    assert await asyncio.to_thread(app.main, ["status"]) == 0
    assert json.loads(capsys.readouterr().out) == {"sandbox-dk": counts}


async def _banner(http: httpx.AsyncClient) -> str:
    """The banner as the page gets it."""
    state: dict[str, Any] = (await http.get("/local-slack/state", params={"user": "U0ALICE"})).json()
    return str(state["panel"]["demo"])


async def test_demo_banner_follows_the_fix(sqlite_url: str) -> None:
    async with open_sandbox(sqlite_url) as server, httpx.AsyncClient(base_url=server.url) as http:
        await eventually(lambda: _demo_done(server), timeout=60, message="the demo script")
        assert await _banner(http) == UNREACHABLE

        server.slack.panel.apply("sandbox-dk", "reachable", True)
        assert await _banner(http) == REACHABLE_AGAIN  # not "… so DHL's bill failed" any more

        engine = server.runtime.engine
        await resync_document(engine, SOURCE, "bill", OUTAGE_BILL, ["invoice"], "U0ALICE")
        await eventually(lambda: _outage_bill_synced(server), timeout=30, message="DHL's bill synced")
        assert await _banner(http) == READY

        server.slack.panel.apply("sandbox-dk", "reachable", False)
        assert "unreachable" in await _banner(http)
        assert "DHL" not in await _banner(http)  # its bill is synced: nothing about it


async def _outage_bill_synced(server: SandboxServer) -> bool:
    async with server.runtime.db.sessions() as s:
        p = await reads.posting_of_document(s, SOURCE, "bill", OUTAGE_BILL, "invoice")
    return p is not None and p.state == PostingState.SYNCED
