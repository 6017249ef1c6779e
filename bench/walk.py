"""Which of our own files and functions two user-visible paths run through. Prints JSON.

The layout issue says a newcomer follows one bill through N files; this counts N.

- ``bill``: one bill the sandbox ledger refuses in words (its account 2800 is gone),
  from ``POST /api/v1/events`` (the real aiohttp route on loopback, the real ingest
  token) through the worker's one try to the outbox sending its failure message to
  the Slack stand-in's Web API.
- ``resync click``: a signed ``block_actions`` request on ``/slack/events`` pressing
  that message's resync button (``ActionId.RESYNC_INVOICE``, its ``PostingRef``
  value), after the account is back, until the message is rebuilt and sent with
  ``chat.update`` after the retry.

Stages run one after the other with nothing in the background (no ``runtime.start()``:
the walk drives worker and outbox itself), so every call traced belongs to the path.
``sys.setprofile`` (and ``threading.setprofile``, for the SQLite writer thread) records
each call of a function in ``app.py``, ``bot/``, ``handlers/``, ``sync/``, ``storage/``
or ``connectors/``; calls made on behalf of the Slack stand-in (``bot/local_slack/``,
``tests/fakes/``) are not ours and are left out, and so is the driver (``tests/``, ``bench/``).

    .venv/bin/python bench/walk.py                  # SQLite in a temporary directory
    .venv/bin/python bench/walk.py --functions      # also list every function by file
    .venv/bin/python bench/walk.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

An ``upward_calls`` entry is a call from a lower layer into a higher one
(storage < sync < bot < handlers < app.py; connectors call nothing of ours outside
``connectors/``), found from the caller frame: the nearest frame of ours up the
stack, ``via`` the library in between when the call was not direct (a callback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.actions import ActionId  # noqa: E402  (after the path above)
from connectors.sandbox.books import SandboxBooks  # noqa: E402
from storage.migrate import upgrade_async  # noqa: E402
from tests.slack_harness import SlackHarness, slack_harness  # noqa: E402
from tests.support import INGEST_TOKEN, FakeClock, bill  # noqa: E402

#: our code: the top folders (and app.py) a newcomer reads
OWN = ("app.py", "bot/", "handlers/", "sync/", "storage/", "connectors/")
#: the Slack stand-in: a call made anywhere below one of its frames is the fake's work, not ours
FAKE = ("bot/local_slack/", "tests/fakes/")
#: the driver of the walk: it starts calls but is not on the path itself
DRIVER = ("tests/", "bench/")
#: layers, lowest first; a call from a lower rank to a higher one is upward
RANK = {"storage": 0, "sync": 1, "bot": 2, "handlers": 3, "app.py": 4}
#: Modules that only declare types and records (dataclasses, enums, ORM tables, typed
#: containers): a reader looks a name up there but follows no logic through them, so
#: ``files_with_logic`` leaves them out. Chosen by reading each module, not by a rule.
RECORD_MODULES = frozenset(
    {
        "storage/models.py",  # ORM tables and their column types
        "storage/states.py",  # the state enums
        "sync/changes.py",  # the Change/AttemptObserved records and the feed's fan-out loop
        "connectors/base.py",  # the Connector protocol, its typed errors and request records
        "bot/actions.py",  # the ActionId enum and the button values' pydantic records
    }
)
#: code objects that are part of their enclosing function's body, not functions a reader opens
#: (comprehensions are inlined from Python 3.12 on; module bodies run at import)
NOT_FUNCTIONS = frozenset({"<module>", "<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})
#: how far up a stack the caller is looked for (a coroutine's stack ends at the event loop)
MAX_DEPTH = 200

Place = tuple[str, str]  # (file relative to the repository, function qualname)


def relative(filename: str) -> str | None:
    """The repository-relative path of a code file, or ``None`` outside the repository."""
    root = str(ROOT) + "/"
    return filename[len(root) :] if filename.startswith(root) else None


def is_own(rel: str | None) -> bool:
    """Whether a file is ours: on the path, not the fake, not the driver."""
    return rel is not None and rel.startswith(OWN) and not rel.startswith(FAKE)


def layer(rel: str) -> str:
    """The layer a file of ours belongs to (``app.py`` or its top folder)."""
    return rel if rel == "app.py" else rel.split("/", 1)[0]


def upward(caller: str, callee: str) -> bool:
    """Whether a call from ``caller``'s file into ``callee``'s file goes against the layers."""
    low, high = layer(caller), layer(callee)
    if low == high:
        return False
    if low == "connectors":
        return True  # connectors import nothing of ours but connectors: any call out is a callback
    if high == "connectors":
        return False
    return RANK[low] < RANK[high]


@dataclass
class Trace:
    """What one path ran: the functions of ours, and the calls against the layers."""

    places: set[Place] = field(default_factory=set)
    upward: set[tuple[Place, Place, str]] = field(default_factory=set)

    def observe(self, frame: FrameType) -> None:
        """Record a call (or a coroutine's resumption) of ``frame``'s function."""
        code = frame.f_code
        if code.co_name in NOT_FUNCTIONS:
            return
        rel = relative(code.co_filename)
        if not is_own(rel):
            return
        assert rel is not None
        caller, via = _caller(frame)
        if caller is _FAKE:
            return  # the stand-in called us: its work, not the path's
        callee: Place = (rel, code.co_qualname)
        self.places.add(callee)
        if caller is not None and upward(caller[0], rel):
            self.upward.add((caller, callee, via))

    def report(self, *, functions: bool) -> dict[str, Any]:
        """The path's figures as JSON-ready values."""
        per_file: dict[str, list[str]] = {}
        for rel, name in sorted(self.places):
            per_file.setdefault(rel, []).append(name)
        body: dict[str, Any] = {
            "files": len(per_file),
            "files_with_logic": sum(1 for f in per_file if f not in RECORD_MODULES),
            "functions": len(self.places),
            "per_file": {f: len(names) for f, names in per_file.items()},
            "upward_calls": [
                {"caller": ":".join(a), "callee": ":".join(b), **({"via": via} if via else {})}
                for a, b, via in sorted(self.upward)
            ],
        }
        if functions:
            body["functions_by_file"] = per_file
        return body


_FAKE: Place = ("(fake)", "")


def _caller(frame: FrameType) -> tuple[Place | None, str]:
    """The nearest frame of ours that led to ``frame`` (``_FAKE`` when the stand-in is anywhere
    below it), and the first library file in between (``""``: a direct call)."""
    caller: Place | None = None
    via = ""
    below = frame.f_back
    for _ in range(MAX_DEPTH):
        if below is None:
            break
        rel = relative(below.f_code.co_filename)
        if rel is not None and rel.startswith(FAKE):
            return _FAKE, via
        if rel is not None and rel.startswith(DRIVER) and not is_own(rel):
            break  # the walk's own frames: nothing below them is the stand-in
        if caller is None:
            if is_own(rel):
                assert rel is not None
                caller = (rel, below.f_code.co_qualname)
            elif not via:
                via = _library(below.f_code.co_filename)
        below = below.f_back
    return caller, via if caller is not None else ""


def _library(filename: str) -> str:
    """A library file's short name (``sqlalchemy/engine/base.py``), for ``via``."""
    parts = Path(filename).parts
    for marker in ("site-packages", "lib"):
        if marker in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(marker) :])
    return filename


_active: Trace | None = None


def _profile(frame: FrameType, event: str, _arg: object) -> None:
    if event == "call" and _active is not None:
        _active.observe(frame)


@contextmanager
def recording(trace: Trace) -> Iterator[Trace]:
    """Record every call of ours into ``trace`` while the block runs (this thread and the
    threads started after :func:`watch_threads`)."""
    global _active
    _active = trace
    sys.setprofile(_profile)
    try:
        yield trace
    finally:
        sys.setprofile(None)
        _active = None


@contextmanager
def watch_threads() -> Iterator[None]:
    """Let threads started in the block (the SQLite writer) report to :func:`recording`."""
    threading.setprofile(_profile)
    try:
        yield
    finally:
        threading.setprofile(None)


# -- the two paths ---------------------------------------------------------------------------

BILL = "B-WALK"
REFUSAL = "Account 2800 does not exist."  # the sandbox ledger's words for the missing account


class WalkFailed(RuntimeError):
    """A path did not end the way a person would see it end: the figures would be of another path."""


def _methods(h: SlackHarness, since: int) -> list[str]:
    """The Web API methods ledgerops called on the stand-in since call number ``since``."""
    return [c.method for c in h.fake.calls[since:]]


async def bill_path(h: SlackHarness) -> tuple[str, list[str]]:
    """Post the bill over HTTP, run its one try, send the outbox: the failure message's ts."""
    since = len(h.fake.calls)
    answer = await h.http.post(
        "/api/v1/events", json=bill(BILL), headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
    )
    if answer.status_code != 202:
        raise WalkFailed(f"ingest answered {answer.status_code}: {answer.text}")
    await h.runtime.worker.run_until_idle()
    await h.deliver()
    posts = h.fake.posts()
    if len(posts) != 1 or REFUSAL not in h.fake.text_of(h.fake.ts_of(posts[0])):
        raise WalkFailed(f"expected one failure message saying {REFUSAL!r}, got {len(posts)} posts")
    return h.fake.ts_of(posts[0]), _methods(h, since)


async def click_path(h: SlackHarness, ts: str) -> list[str]:
    """Press resync on the failure message, run the retry, send the outbox until it shows it."""
    since = len(h.fake.calls)
    answer = await h.press_button(ts, ActionId.RESYNC_INVOICE)
    if answer.status_code != 200:
        raise WalkFailed(f"/slack/events answered {answer.status_code}")
    await h.settle_clicks()
    await h.deliver()
    await h.runtime.worker.run_until_idle()
    await h.deliver()
    updated = [c for c in h.fake.calls[since:] if c.method == "chat.update" and c.args.get("ts") == ts]
    if not updated or "is synced" not in h.fake.text_of(ts):
        raise WalkFailed("the message was not rebuilt as synced with chat.update after the retry")
    return _methods(h, since)


async def walk(db_url: str, *, functions: bool = False) -> dict[str, Any]:
    """Both paths on a migrated, empty database; the JSON report."""
    clock = FakeClock()
    books = SandboxBooks()
    bill_trace, click_trace = Trace(), Trace()
    with watch_threads():
        async with slack_harness(db_url, clock, sandbox_books=books) as h:
            h.runtime.engine.connector("books-dk")  # the sandbox ledger comes to life with it
            ledger = books["books-dk"]
            ledger.accounts.pop("2800")  # someone removed the account: the ledger refuses
            await h.notifier.reconcile()  # what start-up does before the outbox runs
            with recording(bill_trace):
                ts, bill_calls = await bill_path(h)
            ledger.accounts["2800"] = "Office supplies"  # the accountant created it again
            with recording(click_trace):
                click_calls = await click_path(h, ts)
    return {
        "database": db_url.split(":", 1)[0],
        "paths": {
            "bill": bill_trace.report(functions=functions) | {"slack_calls": bill_calls},
            "resync click": click_trace.report(functions=functions) | {"slack_calls": click_calls},
        },
        "record_modules": sorted(RECORD_MODULES),
    }


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--database-url", help="an empty database (it is migrated); default: SQLite")
    parser.add_argument("--functions", action="store_true", help="list every function by file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/walk.db"
        await upgrade_async(url)
        print(json.dumps(await walk(url, functions=args.functions), indent=2))


if __name__ == "__main__":
    asyncio.run(main())
