"""The command line: ingest a file, status, migrate, connect's refusals, start-up errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import app
from tests.support import bill

CONFIG = """
[[integrations]]
name = "books-dk"
kind = "sandbox"
payment_account = 5820
[integrations.mappings.categories]
"Office supplies" = 2800
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> Path:
    (tmp_path / "ledgerops.toml").write_text(CONFIG)
    monkeypatch.setenv("LEDGEROPS_CONFIG", str(tmp_path / "ledgerops.toml"))
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_ingest_file_then_status(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = [json.dumps(bill("C-1")), json.dumps(bill("C-2")), ""]
    (workdir / "events.jsonl").write_text("\n".join(lines))
    assert app.main(["ingest", str(workdir / "events.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"accepted": 2, "stale": 0}
    assert app.main(["status"]) == 0
    assert json.loads(capsys.readouterr().out) == {"books-dk": {"pending": 2}}


def test_ingest_file_with_a_bad_line_stores_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = bill("C-3", amount="-1")
    (workdir / "events.jsonl").write_text(json.dumps(bill("C-4")) + "\n" + json.dumps(bad) + "\n")
    assert app.main(["ingest", str(workdir / "events.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "line 2: data.amount" in err and "nothing was stored" in err
    assert app.main(["status"]) == 0
    assert json.loads(capsys.readouterr().out) == {"books-dk": {}}


def test_startup_errors_are_one_line_naming_the_setting(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "ledgerops.toml").write_text(
        CONFIG.replace("payment_account = 5820", 'payment_account = 5820\ncolour = "blue"')
    )
    assert app.main(["status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "integrations[books-dk].colour: unknown key" in err
    monkeypatch.setenv("SLACK_BOT_TOKEN", "not-a-token-secret")
    assert app.main(["status"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" in err and "not-a-token-secret" not in err


def test_connect_refuses_what_needs_no_sign_in(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["connect", "books-dk"]) == 2
    assert "needs no `connect`" in capsys.readouterr().err
    assert app.main(["connect", "nowhere"]) == 2
    assert "no integration named 'nowhere'" in capsys.readouterr().err


def test_migrate(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert app.main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
