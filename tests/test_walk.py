"""The walk (``bench/walk.py``): one bill and one resync click, traced through our files.

The figures change with the code; what must hold is what a person sees at the end
of each path, and that no call runs against the layers but the known ones.
"""

from __future__ import annotations

from typing import Any

from bench.walk import RECORD_MODULES, walk

#: Calls from a lower layer into a higher one that the two paths make today, on SQLite.
#: The change feed is the designed one; the others are callbacks that go upwards too.
KNOWN_UPWARD = {
    # the change feed: sync tells whoever renders (outbox, App Home) what changed
    ("sync/changes.py:ChangeFeed.publish", "bot/outbox/notifier.py:Notifier._on_changes"),
    ("sync/changes.py:ChangeFeed.publish", "handlers/home.py:HomeTab.on_changes"),
    # the attempt listeners (metrics), called by the worker itself, not through the feed
    ("sync/worker.py:Worker._send_one", "bot/ops/metrics.py:Metrics.observe_attempt"),
    # the SQLite writer thread runs the worker's transaction functions (Database.run(fn))
    ("storage/sqlite_writer.py:SqliteWriter._commit", "sync/worker.py:Worker._drain.<locals>.<lambda>"),
    ("storage/sqlite_writer.py:SqliteWriter._commit", "sync/worker.py:Worker._record_and_claim"),
    ("storage/sqlite_writer.py:SqliteWriter._commit", "sync/worker.py:Worker._start"),
    ("storage/sqlite_writer.py:SqliteWriter._commit", "sync/worker.py:Worker.tick.<locals>.sweep"),
    # bot's lazy-listener runner calls the handler's listener
    ("bot/slack.py:LazyWork._call", "handlers/buttons.py:listen.<locals>.lazy"),
}


def _upward(path: dict[str, Any]) -> set[tuple[str, str]]:
    return {(u["caller"], u["callee"]) for u in path["upward_calls"]}


async def test_walk_follows_a_refused_bill_and_its_resync_click_through_our_files(sqlite_url: str) -> None:
    report = await walk(sqlite_url)
    bill, click = report["paths"]["bill"], report["paths"]["resync click"]
    # what the finance team sees: the failure message, then the same message rebuilt
    assert bill["slack_calls"] == ["chat.postMessage"]
    assert "chat.update" in click["slack_calls"]
    # each path runs through the route, the rules and the SQL, and the fake Slack is not counted
    assert "handlers/ingest.py" in bill["per_file"] and "sync/synchronizer.py" in bill["per_file"]
    assert "handlers/buttons.py" in click["per_file"] and "sync/resync.py" in click["per_file"]
    for path in (bill, click):
        assert not any(f.startswith(("bot/local_slack/", "tests/", "bench/")) for f in path["per_file"])
        assert path["files"] == len(path["per_file"])
        assert path["functions"] == sum(path["per_file"].values())
        assert path["files_with_logic"] == len(set(path["per_file"]) - RECORD_MODULES)
    assert _upward(bill) | _upward(click) == KNOWN_UPWARD
