"""Two processes on one SQLite file: the second refuses with one line (issue 10, item 11)."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import bill

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
[[integrations]]
name = "books-dk"
kind = "sandbox"
payment_account = 5820
[integrations.mappings.categories]
"Office supplies" = 2800
"""


@pytest.fixture
def environ(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    (tmp_path / "ledgerops.toml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LEDGEROPS_", "DATABASE_"))}
    env.update(DATABASE_URL=sqlite_url, LEDGEROPS_CONFIG=str(tmp_path / "ledgerops.toml"))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(environ: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    """``python app.py ARGS`` on its own port, so only the database is shared."""
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args],
        env={**environ, "PORT": str(free_port())},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_listening(proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Read the server's stdout until it says it listens (or fail at the deadline)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=deadline - time.monotonic()):
                line = proc.stdout.readline()
                if "listening on" in line:
                    return
                if not line:
                    break
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.communicate()[1][-2000:]}")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of a command that should end by itself."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"{proc.args[2:]} kept running beside the first server") from None
    return proc.returncode, out, err


@pytest.fixture
def first_server(environ: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = start(environ, tmp_path, "serve", "--host", "127.0.0.1")
    try:
        wait_listening(proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)


def test_a_second_server_on_the_same_sqlite_file_refuses_with_one_line(
    first_server: subprocess.Popen[str], environ: dict[str, str], tmp_path: Path
) -> None:
    code, _, err = finish(start(environ, tmp_path, "serve", "--host", "127.0.0.1"))
    assert code != 0
    [line] = err.strip().splitlines()
    assert line.startswith("ledgerops: another ledgerops process is using ")
    assert f"(pid {first_server.pid})" in line and "SQLite is for one process" in line
    assert "PostgreSQL" in line


def test_writing_commands_refuse_and_status_reads_while_a_server_runs(
    first_server: subprocess.Popen[str], environ: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "events.jsonl").write_text(json.dumps(bill("L-1")) + "\n")
    for args in (("ingest", str(tmp_path / "events.jsonl")), ("migrate",)):
        code, _, err = finish(start(environ, tmp_path, *args))
        assert code != 0 and "another ledgerops process is using" in err, (args, err)
    code, out, err = finish(start(environ, tmp_path, "status"))
    assert code == 0, err
    assert json.loads(out) == {"books-dk": {}}


def test_a_killed_server_leaves_no_stale_lock(
    first_server: subprocess.Popen[str], environ: dict[str, str], tmp_path: Path
) -> None:
    first_server.kill()  # SIGKILL: no clean-up runs
    first_server.communicate(timeout=60)
    again = start(environ, tmp_path, "serve", "--host", "127.0.0.1")
    try:
        wait_listening(again)  # the lock went with the killed process
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)
