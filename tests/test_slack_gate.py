"""One allow-list gate in front of every button, modal and changing command.

The ids are not listed by hand: the test records every ``app.action`` /
``app.view`` / ``app.command`` the listeners register, so a new button or
modal is sent as an outsider the day it is added.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from slack_bolt.async_app import AsyncApp
from sqlalchemy import select

from handlers import command_parser as cp
from storage.models import Activity, Document, Integration, Mapping, Posting
from tests.slack_harness import (
    ALICE,
    CHANNEL,
    MALLORY,
    SlackHarness,
    click_body,
    signed_headers,
    slack_harness,
)
from tests.support import FakeClock, bill

#: one sample of every changing command; the test checks it covers ``cp.CHANGING``
CHANGING_SAMPLES = {
    cp.Resync: "resync S-1",
    cp.ResyncFailed: "resync failed books-dk",
    cp.Restart: "restart S-1",
    cp.Pause: "pause books-dk",
    cp.Resume: "resume books-dk",
    cp.History: "history books-dk --since 2026-01-01",
    cp.Map: 'map category "Travel" 2750',
}
READING_SAMPLES = ("status", "attention", "log S-1", "queue", "help")


@dataclass
class Registered:
    """What the listeners registered on the bolt app."""

    actions: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)


@pytest.fixture
async def registered(monkeypatch: pytest.MonkeyPatch) -> Registered:
    seen = Registered()
    for name, bucket in (("action", seen.actions), ("view", seen.views), ("command", seen.commands)):
        original = getattr(AsyncApp, name)

        def recording(
            self: AsyncApp, constraints: Any, *a: Any, _o: Any = original, _b: Any = bucket, **k: Any
        ):
            assert isinstance(constraints, str), f"register ids as strings, not {constraints!r}"
            _b.append(constraints)
            return _o(self, constraints, *a, **k)

        monkeypatch.setattr(AsyncApp, name, recording)
    for name in ("shortcut", "options", "block_suggestion", "dialog_submission", "message"):
        # nothing of ours listens there today; a listener added there must be gated and tested too
        monkeypatch.setattr(AsyncApp, name, _refuse_unlisted(name))
    return seen


def _refuse_unlisted(name: str) -> Any:
    def refuse(self: AsyncApp, *a: Any, **k: Any) -> Any:
        raise AssertionError(f"a listener on app.{name}: add it to test_slack_gate")

    return refuse


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, registered: Registered) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock) as h:
        await h.ingest(
            bill("S-1", category="Travel"), bill("S-2", paid={"date": "2026-11-03", "amount": "1250.00"})
        )
        await h.runtime.worker.run_until_idle()
        yield h


async def books(h: SlackHarness) -> list[Any]:
    """Every row a person's action could change (postings, documents, integrations, mappings)."""
    rows: list[Any] = []
    async with h.runtime.db.sessions() as s:
        for model in (Posting, Document, Integration, Mapping):
            for obj in (await s.scalars(select(model))).all():
                rows.append({c.key: getattr(obj, c.key) for c in model.__mapper__.column_attrs})
    return rows


async def audit(h: SlackHarness) -> list[tuple[str | None, str, str | None]]:
    async with h.runtime.db.sessions() as s:
        return list((await s.execute(select(Activity.actor, Activity.action, Activity.outcome))).all())


def view_body(callback_id: str, user: str, view_id: str = "V0OUT") -> str:
    payload = {
        "type": "view_submission",
        "team": {"id": "T0TEAM", "domain": "finance"},
        "user": {"id": user, "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "trigger_id": "1234.5678.abcd",
        "view": {
            "id": view_id,
            "type": "modal",
            "callback_id": callback_id,
            "hash": "h",
            "private_metadata": json.dumps({"channel": CHANNEL}),
            "blocks": [{"type": "input", "block_id": "states", "element": {"type": "checkboxes"}}],
            "state": {
                "values": {
                    "integration": {
                        "ledgerops.bulk_filter": {
                            "type": "static_select",
                            "selected_option": {"value": "books-dk"},
                        }
                    },
                    "confirm": {"confirm": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
                }
            },
        },
    }
    return "payload=" + urllib.parse.quote(json.dumps(payload))


def command_body(text: str, user: str, command: str = "/ledger") -> str:
    return urllib.parse.urlencode(
        {
            "team_id": "T0TEAM",
            "channel_id": CHANNEL,
            "user_id": user,
            "command": command,
            "text": text,
            "api_app_id": "A0APP",
            "response_url": "http://127.0.0.1:9/respond",  # refused before anything is sent there
            "trigger_id": "1234.5678.abcd",
        }
    )


async def button_values(h: SlackHarness) -> dict[str, str]:
    """A value of the right shape for each button (the gate must not depend on junk values)."""
    async with h.runtime.db.sessions() as s:
        p = (await s.scalars(select(Posting).order_by(Posting.id))).first()
        group = await s.scalar(select(Posting.error_group_id).where(Posting.error_group_id.is_not(None)))
    assert p is not None and group is not None
    ids = {"document": p.document_id, "posting": p.id, "group": group, "integration": p.integration_id}
    home = json.dumps({"integration": "books-dk"})
    return {
        "default": json.dumps({**ids, "page": 0}),
        "ledgerops.pause": home,
        "ledgerops.resume": home,
        "ledgerops.confirm_history": json.dumps({"integration": "books-dk", "since": "2026-01-01"}),
    }


async def test_every_button_modal_and_changing_command_refuses_an_outsider(
    slack: SlackHarness, registered: Registered
) -> None:
    assert set(CHANGING_SAMPLES) == set(cp.CHANGING), "add a sample of the new changing command"
    assert registered.actions and registered.views and registered.commands
    values = await button_values(slack)
    before = await books(slack)
    problems: list[str] = []

    async def check(what: str, answer: httpx.Response, refused: str | None) -> None:
        await slack.settle_clicks()
        await slack.runtime.worker.run_until_idle()
        if answer.status_code != 200:
            problems.append(f"{what}: HTTP {answer.status_code}")
        if await books(slack) != before:
            problems.append(f"{what}: changed the books")
        if refused is None:
            problems.append(f"{what}: no refusal shown")
        slack.fake.calls.clear()

    for action_id in registered.actions:
        value = values.get(action_id, values["default"])
        answer = await slack.press(action_id, value, user=MALLORY)
        await slack.settle_clicks()
        told = [c.args["text"] for c in slack.fake.ephemerals(MALLORY)]
        await check(action_id, answer, next((t for t in told if "not allowed" in t), None))
    for callback_id in registered.views:
        body = view_body(callback_id, MALLORY)
        answer = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
        shown = answer.json() if answer.text.startswith("{") else {}
        errors = " ".join((shown.get("errors") or {}).values())
        await check(
            callback_id,
            answer,
            errors if shown.get("response_action") == "errors" and "not allowed" in errors else None,
        )
    for command in registered.commands:
        for text in CHANGING_SAMPLES.values():
            body = command_body(text, MALLORY, command)
            answer = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
            shown = answer.json() if answer.text.startswith("{") else {}
            ok = shown.get("response_type") == "ephemeral" and "not allowed" in str(shown.get("text"))
            await check(f"{command} {text}", answer, shown.get("text") if ok else None)
    assert not problems, "\n".join(problems)
    rows = await audit(slack)
    sent = len(registered.actions) + len(registered.views) + len(registered.commands) * len(CHANGING_SAMPLES)
    assert len(rows) == sent and {(actor, outcome) for actor, _, outcome in rows} == {(MALLORY, "refused")}


async def _refusals(h: SlackHarness) -> list[Any]:
    return [c for c in h.fake.ephemerals(MALLORY) if "not allowed" in c.args["text"]]


async def test_reading_commands_stay_open_to_everyone(slack: SlackHarness) -> None:
    before = await books(slack)
    for text in READING_SAMPLES:
        body = command_body(text, MALLORY)
        answer = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
        assert answer.status_code == 200
        assert "not allowed" not in answer.text, text
        assert answer.json()["response_type"] == "ephemeral"
    assert await books(slack) == before and await audit(slack) == []


async def test_the_allow_list_still_lets_its_people_through(slack: SlackHarness) -> None:
    body = view_body("ledgerops.bulk_resync", ALICE)
    answer = await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 200 and answer.text == ""  # accepted: the modal closes
    await slack.settle_clicks()
    assert (ALICE, "resync_many", "ok") in await audit(slack)  # the failed posting was queued again
    value = (await button_values(slack))["ledgerops.pause"]
    body = click_body("ledgerops.pause", value, user="U0BOB")  # BOB: through the user group
    await slack.http.post("/slack/events", content=body, headers=signed_headers(body))
    await slack.settle_clicks()
    async with slack.runtime.db.sessions() as s:
        assert await s.scalar(select(Integration.paused)) is True
