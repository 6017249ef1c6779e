"""Structured logs: one JSON object per line, ids as fields, tokens never written."""

from __future__ import annotations

import io
import json
import logging
import os
import select as io_select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import app as cli
from bot.logs import REDACTED, JsonLines, configure

BOT = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp"


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer (the root logger is left alone)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("ledgerops.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def events(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_one_json_object_per_line_with_ids_as_fields(lines: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = lines
    log.info("attempt failed", extra={"posting": 12, "document": 7, "code": "unreachable"})
    log.warning("two\nlines of message")
    first, second = events(out)
    assert first["event"] == "attempt failed" and first["level"] == "info"
    assert (first["posting"], first["document"], first["code"]) == (12, 7, "unreachable")
    assert second["event"] == "two\nlines of message"  # still one line on the wire
    assert len(out.getvalue().splitlines()) == 2


def test_tokens_are_masked_wherever_they_appear(lines: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = lines
    log.info("calling Slack with %s", BOT)
    log.info(
        "request",
        extra={
            "headers": {"Authorization": "Bearer x"},
            "note": "sent Bearer x to the ledger",
            "nested": [{"reply": f"token was {BOT}"}],
            "app": "xapp-1-A0-123-abc",
            "token": "plain-looking-secret",
        },
    )
    try:
        raise RuntimeError(f"auth failed for Bearer abc.def and {BOT}")
    except RuntimeError:
        log.exception("call failed")
    text = out.getvalue()
    for secret in (BOT, "Bearer x", "Bearer abc.def", "xapp-1-A0-123-abc", "plain-looking-secret"):
        assert secret not in text, secret
    first, second, third = events(out)
    assert first["event"] == f"calling Slack with {REDACTED}"
    assert second["headers"] == {"Authorization": REDACTED}
    assert second["note"] == f"sent {REDACTED} to the ledger"
    assert second["nested"] == [{"reply": f"token was {REDACTED}"}]
    assert second["token"] == REDACTED
    assert REDACTED in str(third["error"]) and "RuntimeError" in str(third["error"])


def test_configure_sends_everything_through_the_json_formatter() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure(stream=out)
        logging.getLogger("sync.worker").info("attempt failed", extra={"posting": 1})
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
    [event] = events(out)
    assert event["logger"] == "sync.worker" and event["posting"] == 1


def test_python_app_py_serve_logs_json_lines(tmp_path: Path) -> None:
    """The real server: every line on stderr is JSON, with the ids of a failed attempt."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "ledgerops.toml"
    config.write_text(
        '[[integrations]]\nname = "books-dk"\nkind = "sandbox"\npayment_account = 5820\n', encoding="utf-8"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "LEDGEROPS_", "DATABASE_URL", "PORT"))
    }
    env.update(
        PORT=str(port),
        LEDGEROPS_CONFIG=str(config),
        LEDGEROPS_INGEST_TOKEN="ingest-secret",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
    )
    proc = subprocess.Popen(
        [sys.executable, str(Path(cli.__file__).resolve()), "serve", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = io_select.select([proc.stdout], [], [], 60)  # a deadline, not a sleep
        assert ready, "python app.py serve printed nothing within 60 s"
        assert proc.stdout.readline() == f"ledgerops: listening on http://127.0.0.1:{port}\n"
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer ingest-secret"}
        event = {
            "source": "ap",
            "kind": "bill",
            "id": "L-1",
            "version": 1,
            "integration": "books-dk",
            "data": {
                "supplier": {"number": 3001, "name": "Kontorland A/S"},
                "invoice_number": "INV-L-1",
                "amount": "10.00",
                "currency": "DKK",
                "date": "2026-11-02",
                "due_date": "2026-12-02",
                "category": "Travel",
                "approved": True,
                "paid": None,
            },
        }
        assert httpx.post(
            f"{base}/api/v1/events", json={"events": [event]}, headers=auth, timeout=10
        ).status_code in (200, 202)
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline and state != "failed":  # polls the API, no sleep
            view = httpx.get(f"{base}/api/v1/documents/ap/bill/L-1", headers=auth, timeout=10).json()
            state = view["postings"][0]["state"]
        assert state == "failed"
        httpx.get(f"{base}/healthz", headers={"Authorization": f"Bearer {BOT}"}, timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    logged = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(e["event"] == "listening" and e["port"] == port for e in logged)
    failed = [e for e in logged if e["event"] == "attempt failed"]
    assert failed and failed[0]["posting"] == 1 and failed[0]["document"] == 1
    assert "ingest-secret" not in err and BOT not in err
