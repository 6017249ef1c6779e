"""Signed but malformed ``/slack/events`` bodies: never a 500, never a change for an outsider.

Every body here carries a valid signature, so it gets past the first door;
what it says is junk, half a payload, or a payload of the wrong shape. One
server per test (hypothesis reuses the fixture across examples), a fixed seed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.actions import ActionId
from bot.bulk.modal import BULK_CALLBACK
from storage.models import Activity, Document, Integration, Mapping, Posting
from tests.slack_harness import ALICE, CHANNEL, MALLORY, SIGNING_SECRET, SlackHarness, slack_harness
from tests.support import FakeClock, bill

ACTION_IDS = [a.value for a in ActionId]
FUZZ = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


#: the books each harness started with, by harness
INITIAL: dict[int, list[Any]] = {}


@pytest.fixture
async def slack(sqlite_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with slack_harness(sqlite_url, clock) as h:
        await h.ingest(bill("F-1", category="Travel"), bill("F-2"))
        await h.runtime.worker.run_until_idle()
        INITIAL[id(h)] = await books(h)
        yield h


def initial(h: SlackHarness) -> list[Any]:
    """The books as the fixture left them (taken before the first example)."""
    return INITIAL[id(h)]


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


def sign(body: str | bytes, timestamp: str) -> str:
    """Slack's v0 signature over any bytes (slack_sdk's helper takes text only)."""
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256)
    return "v0=" + digest.hexdigest()


async def post(h: SlackHarness, body: str | bytes, content_type: str, *, timestamp: str | None = None) -> int:
    """Send a body with a valid signature; the status once the work it started is done."""
    stamp = str(int(time.time())) if timestamp is None else timestamp
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(body, stamp),
        "Content-Type": content_type,
    }
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
    for timestamp in ("abc", "", "1e9", "nan", "-1", "+1", str(10**30), str(int(time.time()) - 301)):
        assert await post(slack, body, FORM, timestamp=timestamp) == 401, timestamp


BAD_VALUES = [
    "not json",
    "[1]",
    '"x"',
    "{}",
    '{"posting": "1"}',
    '{"posting": -1}',
    '{"document": 1e400}',
    json.dumps({"posting": 2**70, "document": 2**70, "group": 2**70, "page": 2**70}),
    '{"posting": true}',
    "x" * 100_000,
    json.dumps({"document": [1] * 10_000}),
    None,
]


@pytest.mark.parametrize("value", BAD_VALUES, ids=[repr(v)[:20] for v in BAD_VALUES])
async def test_a_button_value_of_the_wrong_type_says_it_could_not_be_read(
    slack: SlackHarness, value: Any
) -> None:
    before = await books(slack)
    for action_id in ACTION_IDS:
        assert await post(slack, form(click(value, user=ALICE, action_id=action_id)), FORM) < 500, action_id
    assert await books(slack) == before
    told = [c.args["text"] for c in slack.fake.ephemerals(ALICE)]
    assert told, "the person who clicked hears that the button could not be read"


@pytest.mark.parametrize("value", [5, ["a"], {"posting": 1}, True])
async def test_a_button_value_that_is_not_text_is_a_400(slack: SlackHarness, value: Any) -> None:
    before = await books(slack)
    assert await post(slack, form(click(value, user=ALICE)), FORM) == 400  # Slack sends text only
    assert await books(slack) == before


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def corrupted(good: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The payload as it is, or with one of its fields (or a new one) replaced by junk."""
    keys = st.sampled_from(sorted(good)) | st.text(max_size=8)
    return st.just(good) | st.tuples(keys, JSONISH).map(lambda kv: {**good, kv[0]: kv[1]})


def payloads(user: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads like Slack's: buttons and modal submissions, now and then with a field of junk."""
    element = st.dictionaries(
        st.sampled_from(["selected_option", "selected_options", "selected_date", "value", "type"]),
        JSONISH | st.fixed_dictionaries({"value": st.text(max_size=8) | JSONISH}),
        max_size=3,
    )
    values = st.dictionaries(
        st.sampled_from(["integration", "states", "since", "until", "group", "documents", "confirm"]),
        st.dictionaries(st.text(max_size=8), element, min_size=1, max_size=1),
        max_size=5,
    )
    view = st.fixed_dictionaries(
        {
            "id": st.just("V0FUZZ"),
            "type": st.just("modal"),
            "callback_id": st.just(BULK_CALLBACK) | st.text(max_size=12),
        },
        optional={
            "state": st.fixed_dictionaries({"values": values}),
            "private_metadata": st.just(json.dumps({"channel": CHANNEL})) | st.text(max_size=20),
            "hash": st.text(max_size=5),
            "blocks": st.just([{"type": "input", "block_id": "states"}]),
        },
    ).flatmap(corrupted)
    action = st.fixed_dictionaries(
        {"action_id": st.sampled_from(ACTION_IDS) | st.text(max_size=12), "block_id": st.just("b")},
        optional={"value": st.text(max_size=40) | JSONISH.map(json.dumps), "type": st.just("button")},
    ).flatmap(corrupted)
    payload = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["block_actions", "view_submission", "view_closed", "shortcut"]),
            "team": st.just({"id": "T0TEAM"}),
            "user": st.fixed_dictionaries({"id": user}),
        },
        optional={
            "actions": st.lists(action, min_size=1, max_size=2),
            "view": view,
            "channel": st.just({"id": CHANNEL}),
            "container": st.just({"type": "message", "channel_id": CHANNEL}),
            "response_url": st.just("http://127.0.0.1:9/r"),
            "trigger_id": st.text(max_size=8),
        },
    )
    return payload.flatmap(corrupted)


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


@settings(FUZZ, max_examples=1200)
@given(st.data())
async def test_fuzz_an_outsider_changes_nothing(slack: SlackHarness, data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["payload", "command", "event", "raw"]))
    if kind == "payload":
        body, content_type = form(data.draw(payloads(OUTSIDER))), FORM
    elif kind == "command":
        body, content_type = data.draw(commands(OUTSIDER)), FORM
    elif kind == "event":
        callback = data.draw(
            st.fixed_dictionaries(
                {"type": st.just("event_callback") | JSONISH},
                optional={"team_id": st.just("T0TEAM") | JSONISH, "event": JSONISH},
            )
        )
        body, content_type = json.dumps(callback), JSON
    else:
        body = data.draw(st.text(max_size=200) | JSONISH.map(json.dumps) | JSONISH.map(form))
        content_type = data.draw(st.sampled_from([FORM, JSON, "text/plain"]))
    status = await post(slack, body, content_type)
    event(f"{kind}: HTTP {status}")
    assert status < 500
    if status < 400:  # it reached a listener (or the gate): nothing may have changed
        assert await books(slack) == initial(slack)


@settings(FUZZ, max_examples=800)
@given(st.data())
async def test_fuzz_a_member_never_gets_a_500(slack: SlackHarness, data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        body = form(data.draw(payloads(st.just(ALICE))))
    else:
        body = data.draw(commands(st.just(ALICE)))
    status = await post(slack, body, FORM)
    event(f"HTTP {status}")
    assert status < 500


@pytest.mark.parametrize("team_id", [[], ["T0TEAM"], {"id": "T0TEAM"}, 7])
async def test_a_team_id_that_is_not_text_is_refused_not_a_500(slack: SlackHarness, team_id: Any) -> None:
    # found by the fuzz test: a validly signed body naming its workspace by a list
    for body in ({"type": "", "team_id": team_id}, {"type": "block_actions", "team": {"id": team_id}}):
        status = await post(slack, json.dumps(body), JSON)
        assert status < 500, body
    assert slack.fake.posts() == []
