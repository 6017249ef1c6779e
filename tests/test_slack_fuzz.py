"""Signed but malformed ``/slack/events`` bodies: never a 500, never a change for an outsider.

Every body here carries a valid signature, so it gets past the first door;
what it says is junk, half a payload, or a payload of the wrong shape. One
server per test (hypothesis reuses the fixture across examples), a fixed seed.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.blocks import ActionId
from bot.bulk_blocks import BULK_CALLBACK
from bot.command_blocks import CommandAction
from storage.models import Activity, Document, Integration, Mapping, Posting
from tests.fakes.slack_api import ALICE, CHANNEL, MALLORY, SlackHarness, signed_headers, slack_harness
from tests.support import FakeClock, bill

ACTION_IDS = [a.value for a in ActionId] + [a.value for a in CommandAction]
FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture
async def slack(sqlite_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(sqlite_url, clock) as h:
        await h.ingest(bill("F-1", category="Travel"), bill("F-2"))
        await h.runtime.worker.run_until_idle()
        yield h


async def books(h: SlackHarness) -> list[Any]:
    rows: list[Any] = []
    async with h.runtime.db.sessions() as s:
        for model in (Posting, Document, Integration, Mapping, Activity):
            for obj in (await s.scalars(select(model))).all():
                row = {c.key: getattr(obj, c.key) for c in model.__mapper__.column_attrs}
                if model is Activity and row["outcome"] == "refused":
                    continue  # the audit of a refusal is expected
                rows.append(row)
    return rows


async def post(h: SlackHarness, body: str | bytes, content_type: str, **header: str) -> int:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    headers = {**signed_headers(text), "Content-Type": content_type}
    if isinstance(body, bytes):  # sign the bytes themselves
        from slack_sdk.signature import SignatureVerifier

        ts = header.get("timestamp", headers["X-Slack-Request-Timestamp"])
        headers["X-Slack-Signature"] = SignatureVerifier("test-signing-secret").generate_signature(
            timestamp=ts, body=body
        )
    if "timestamp" in header:
        from slack_sdk.signature import SignatureVerifier

        headers["X-Slack-Request-Timestamp"] = header["timestamp"]
        headers["X-Slack-Signature"] = SignatureVerifier("test-signing-secret").generate_signature(
            timestamp=header["timestamp"], body=body
        )
    answer = await h.http.post("/slack/events", content=body, headers=headers)
    await h.settle_clicks()
    return answer.status_code


def form(payload: Any) -> str:
    return "payload=" + urllib.parse.quote(payload if isinstance(payload, str) else json.dumps(payload))


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def click(
    value: Any, *, user: Any = MALLORY, action_id: str = ActionId.RESYNC_INVOICE.value
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "user": {"id": user},
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "channel_id": CHANNEL},
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
    }


MALFORMED: list[tuple[str, str | bytes, str]] = [
    ("empty body", "", FORM),
    ("empty payload", "payload=", FORM),
    ("payload not JSON", form("{not json"), FORM),
    ("payload a list", form([1, 2]), FORM),
    ("payload a number", form("5"), FORM),
    ("payload null", form("null"), FORM),
    ("payload a string", form('"block_actions"'), FORM),
    ("payload nested deep", form("[" * 100_000 + "]" * 100_000), FORM),
    ("JSON body a list", "[1]", JSON),
    ("JSON body broken", '{"type": ', JSON),
    ("JSON body nested deep", '{"a":' * 50_000 + "1" + "}" * 50_000, JSON),
    ("not UTF-8", b"payload=\xff\xfe\xfa", FORM),
    ("actions not a list", form({**click("{}"), "actions": "x"}), FORM),
    ("actions empty", form({**click("{}"), "actions": []}), FORM),
    ("action a number", form({**click("{}"), "actions": [5]}), FORM),
    ("action id a number", form({**click("{}"), "actions": [{"action_id": 5}]}), FORM),
    ("user a string", form({**click("{}"), "user": "U0ALICE"}), FORM),
    ("team a string", form({**click("{}"), "team": "T0TEAM"}), FORM),
    ("channel a list", form({**click("{}"), "channel": []}), FORM),
    ("no type", form({"user": {"id": ALICE}}), FORM),
    ("view a string", form({"type": "view_submission", "team": {"id": "T0TEAM"}, "view": "x"}), FORM),
    ("view without callback", form({"type": "view_submission", "team": {"id": "T0TEAM"}, "view": {}}), FORM),
    ("event a string", json.dumps({"type": "event_callback", "team_id": "T0TEAM", "event": "x"}), JSON),
    ("event without type", json.dumps({"type": "event_callback", "team_id": "T0TEAM", "event": {}}), JSON),
    ("command without user", urllib.parse.urlencode({"command": "/ledger", "team_id": "T0TEAM"}), FORM),
    (
        "command without text",
        urllib.parse.urlencode({"command": "/ledger", "team_id": "T0TEAM", "user_id": ALICE}),
        FORM,
    ),
]


@pytest.mark.parametrize("what,body,content_type", MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_a_malformed_signed_body_is_never_a_500(
    slack: SlackHarness, what: str, body: str | bytes, content_type: str
) -> None:
    before = await books(slack)
    assert await post(slack, body, content_type) < 500, what
    assert await books(slack) == before


async def test_a_timestamp_that_is_not_a_number_is_refused(slack: SlackHarness) -> None:
    body = form(click("{}", user=ALICE))
    for timestamp in ("abc", "", "1e9", "nan", "１２３", "-1", str(10**30)):
        assert await post(slack, body, FORM, timestamp=timestamp) == 401, timestamp


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1]",
        '"x"',
        "{}",
        '{"posting": "1"}',
        '{"posting": -1}',
        '{"document": 1e400}',
        json.dumps({"posting": 2**70, "document": 2**70, "group": 2**70}),
        '{"posting": true}',
        "x" * 100_000,
        json.dumps({"document": [1] * 10_000}),
        None,
        5,
        ["a"],
        {"posting": 1},
    ],
)
async def test_a_button_value_of_the_wrong_type_says_it_could_not_be_read(
    slack: SlackHarness, value: Any
) -> None:
    before = await books(slack)
    for action_id in ACTION_IDS:
        assert await post(slack, form(click(value, user=ALICE, action_id=action_id)), FORM) == 200, action_id
    assert await books(slack) == before
    told = [c.args["text"] for c in slack.fake.ephemerals(ALICE)]
    assert told, "the person who clicked hears that the button could not be read"


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def payloads(user: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads that look like Slack's, with any part replaced by junk."""
    action = st.fixed_dictionaries(
        {"action_id": st.sampled_from(ACTION_IDS) | JSONISH, "block_id": st.text(max_size=5) | JSONISH},
        optional={"value": st.text(max_size=40) | JSONISH.map(json.dumps) | JSONISH, "type": JSONISH},
    )
    view = st.fixed_dictionaries(
        {"callback_id": st.just(BULK_CALLBACK) | JSONISH},
        optional={
            "id": st.text(max_size=5) | JSONISH,
            "state": st.fixed_dictionaries({"values": st.dictionaries(st.text(max_size=12), JSONISH)})
            | JSONISH,
            "private_metadata": st.text(max_size=20) | JSONISH,
            "blocks": st.lists(JSONISH, max_size=3),
        },
    )
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["block_actions", "view_submission", "view_closed", "shortcut"]) | JSONISH},
        optional={
            "team": st.just({"id": "T0TEAM"}) | JSONISH,
            "user": st.fixed_dictionaries({"id": user}) | JSONISH,
            "actions": st.lists(action, max_size=2) | JSONISH,
            "view": view | JSONISH,
            "channel": st.just({"id": CHANNEL}) | JSONISH,
            "container": JSONISH,
            "response_url": st.just("http://127.0.0.1:9/r") | JSONISH,
            "trigger_id": JSONISH,
        },
    )


def commands(user: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    words = st.sampled_from(
        [
            "resync",
            "failed",
            "pause",
            "resume",
            "map",
            "history",
            "restart",
            "books-dk",
            "--since",
            "2026-01-01",
            "F-1",
            "category",
            '"Travel"',
            "2750",
            "<!here>",
            "\x00",
        ]
    )
    fields = st.fixed_dictionaries(
        {
            "command": st.just("/ledger") | st.text(max_size=8),
            "team_id": st.just("T0TEAM") | st.text(max_size=8),
        },
        optional={
            "user_id": user,
            "text": st.lists(words | st.text(max_size=8), max_size=6).map(" ".join),
            "channel_id": st.just(CHANNEL),
            "trigger_id": st.text(max_size=5),
        },
    )
    return fields.map(urllib.parse.urlencode)


OUTSIDER = st.sampled_from([MALLORY, "", "U0ALICE ", "u0alice"]) | JSONISH


@settings(FUZZ, max_examples=1500)
@given(st.data())
async def test_fuzz_an_outsider_changes_nothing(slack: SlackHarness, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["payload", "command", "event", "raw"]))
    if kind == "payload":
        body, content_type = form(data.draw(payloads(OUTSIDER))), FORM
    elif kind == "command":
        body, content_type = data.draw(commands(OUTSIDER)), FORM
    elif kind == "event":
        event = data.draw(
            st.fixed_dictionaries(
                {"type": st.just("event_callback") | JSONISH},
                optional={"team_id": st.just("T0TEAM") | JSONISH, "event": JSONISH},
            )
        )
        body, content_type = json.dumps(event), JSON
    else:
        body = data.draw(st.text(max_size=200) | JSONISH.map(json.dumps) | JSONISH.map(form))
        content_type = data.draw(st.sampled_from([FORM, JSON, "text/plain"]))
    before = await books(slack)
    assert await post(slack, body, content_type) < 500
    assert await books(slack) == before


@settings(FUZZ, max_examples=1000)
@given(st.data())
async def test_fuzz_a_member_never_gets_a_500(slack: SlackHarness, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        body = form(data.draw(payloads(st.just(ALICE))))
    else:
        body = data.draw(commands(st.just(ALICE)))
    assert await post(slack, body, FORM) < 500
