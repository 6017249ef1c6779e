"""What Slack shows of documents and ledgers: secrets masked, plain text that cannot fake a line.

Through the real interfaces: ingest, the worker against the sandbox ledger,
the outbox against the fake Slack, signed commands, button presses and the
App Home; then every builder on its own with the same hostile text.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from app import connector_for
from bot.block_kit import SlackBody
from bot.commands.answers import attention_answer, usage_answer
from bot.home.view import home_view
from bot.logs import remember_secret
from bot.ops.facts import OutageNotice
from bot.ops.messages import outage_message
from bot.postings.facts import DocumentFacts, GroupMember, GroupNotice, LogEntry, PostingFacts, PostingNotice
from bot.postings.log_blocks import log_page, outcome_note, thread_reply
from bot.postings.messages import group_message, posting_message
from connectors.base import NeedsPersonError
from connectors.sandbox.books import SandboxBooks
from sync.config import IntegrationConfig
from sync.overview import AttentionGroup
from sync.resync import resync_document
from tests.slack_harness import ALICE, CHANNEL, SlackHarness, signed_headers, slack_harness
from tests.support import FakeClock, bill, eventually

INTEGRATION_SECRET = "agr33ment-Grant-0f-books-dk"
TOKENS = [
    "xoxb-1111-2222-abcdefABCDEF",
    "xapp-1-A0APP-3333-deadbeef",
    "eyJhbGciOiJIUzI1NiJ9.payload.sig",
    INTEGRATION_SECRET,
]
LEDGER_ERROR = (
    "Refused: request with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig and token "
    f"xoxb-1111-2222-abcdefABCDEF (app xapp-1-A0APP-3333-deadbeef, grant {INTEGRATION_SECRET}) "
    "is not allowed."
)
HOSTILE = (
    "Evil\u202e A/S\n\n:red_circle: *Synced* by _CFO_ ~struck~ `code` <https://evil.example|click here>"
    "\u0007\u0085\u2066inside\u2069\u200f\u200e\r\u2028end"
)
FORMATTED = ["*Synced*", "_CFO_", "~struck~", "`code`", "<https://evil", "|click here>"]
INVISIBLE = "\u202e\u2066\u2069\u200f\u200e\u0007\u0085\u2028\r"


@pytest.fixture
async def slack(db_url: str, clock: FakeClock, sandbox_books: SandboxBooks) -> AsyncIterator[SlackHarness]:
    async with slack_harness(db_url, clock, sandbox_books=sandbox_books) as h:
        await h.notifier.reconcile()
        yield h


def everything_sent(h: SlackHarness, *answers: Any) -> str:
    """Every argument of every Web API call, and the answers given over HTTP, as one text."""
    return json.dumps([c.args for c in h.fake.calls] + list(answers), ensure_ascii=False)


async def command(h: SlackHarness, text: str) -> dict[str, Any]:
    form = {
        "team_id": "T0TEAM",
        "channel_id": CHANNEL,
        "user_id": ALICE,
        "command": "/ledger",
        "text": text,
        "api_app_id": "A0APP",
        "response_url": "http://127.0.0.1:9/respond",
        "trigger_id": h.fake.trigger(ALICE),
    }
    body = urllib.parse.urlencode(form)
    answer = await h.http.post("/slack/events", content=body, headers=signed_headers(body))
    assert answer.status_code == 200
    return answer.json()


async def open_home(h: SlackHarness) -> dict[str, Any]:
    event = {
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1790000000,
        "event": {"type": "app_home_opened", "user": ALICE, "channel": "D0HOME", "tab": "home"},
    }
    body = json.dumps(event)
    headers = {**signed_headers(body), "Content-Type": "application/json"}
    assert (await h.http.post("/slack/events", content=body, headers=headers)).status_code == 200

    async def published() -> bool:
        return bool(h.fake.of("views.publish"))

    await eventually(published, message="home published")
    return h.fake.of("views.publish")[-1].args


def ledger_refuses_with_tokens(monkeypatch: pytest.MonkeyPatch, h: SlackHarness) -> None:
    h.runtime.engine.connector("books-dk")
    books = h.runtime.sandbox_books["books-dk"]

    def refuse(_req: Any) -> None:
        raise NeedsPersonError(LEDGER_ERROR, code="forbidden")

    monkeypatch.setattr(books, "_validate", refuse)


async def test_a_token_in_a_ledger_error_is_masked_in_every_message(
    slack: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember_secret(INTEGRATION_SECRET)  # what connector_for does with a configured secret
    ledger_refuses_with_tokens(monkeypatch, slack)
    await slack.ingest(bill("T-1"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()  # the failure message
    [post] = slack.fake.posts()
    ts = slack.fake.ts_of(post)
    await resync_document(slack.runtime.engine, "ap", "bill", "T-1", ["invoice"], actor=ALICE)
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()  # the thread reply of the second attempt
    assert slack.fake.replies(ts)
    await slack.ingest(bill("T-2"), bill("T-3"))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()  # the group message
    assert len(slack.fake.posts()) == 2
    await slack.press_button(ts, "ledgerops.show_log")  # Show log
    await slack.settle_clicks()
    assert slack.fake.ephemerals(ALICE)
    answers = [await command(slack, "attention"), await command(slack, "log bill:T-1")]
    home = await open_home(slack)

    sent = everything_sent(slack, *answers, home)
    for token in TOKENS:
        assert token not in sent, token
    assert "xoxb-" not in sent and "Bearer eyJ" not in sent
    kinds = {
        "failure message": slack.fake.text_of(ts),
        "thread reply": json.dumps([c.args for c in slack.fake.replies(ts)]),
        "group message": slack.fake.text_of(slack.fake.ts_of(slack.fake.posts()[1])),
        "show log": json.dumps(slack.fake.ephemerals(ALICE)[-1].args),
        "attention": json.dumps(answers[0]),
        "log command": json.dumps(answers[1]),
        "app home": json.dumps(home),
    }
    for kind, text in kinds.items():
        assert "[redacted]" in text and "is not allowed" in text, kind


async def test_a_hostile_supplier_name_cannot_fake_lines_or_format(
    slack: SlackHarness, sandbox_books: SandboxBooks
) -> None:
    slack.runtime.engine.connector("books-dk")
    sandbox_books["books-dk"].accounts.pop("2800")  # so it fails and a message goes out
    await slack.ingest(bill("H-1", supplier={"number": 3001, "name": HOSTILE}))
    await slack.runtime.worker.run_until_idle()
    await slack.deliver()
    [post] = slack.fake.posts()
    message = slack.fake.messages[slack.fake.ts_of(post)]
    texts = [message["text"], *_texts(message["blocks"])]
    shown = [t for t in texts if "Evil" in t]
    assert shown, "the supplier is shown"
    for text in texts:
        assert not set(text) & set(INVISIBLE), repr(text)
        for mark in FORMATTED:
            assert mark not in text, (mark, text)
    for text in shown:
        supplier = text[text.index("Evil") : text.index("end", text.index("Evil")) + 3]
        assert "\n" not in supplier, repr(supplier)  # one line, whatever the name says
        assert "Synced" in supplier and "CFO" in supplier and "inside" in supplier  # still readable


# -- every builder ------------------------------------------------------------------------------

AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["text"]] if isinstance(node.get("text"), str) else []
        return out + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def hostile_doc() -> DocumentFacts:
    data = {
        "supplier": {"number": "3001", "name": HOSTILE},
        "invoice_number": "INV-*1*",
        "amount": "1250.00",
        "currency": "DKK",
    }
    return DocumentFacts(id=7, source="ap", kind="bill", external_id="B-_1_", data=data)


def every_kind() -> dict[str, Any]:
    doc = hostile_doc()
    posting = PostingFacts(
        id=12, kind="invoice", state="failed", integration="books-dk", last_error=LEDGER_ERROR
    )
    entry = LogEntry(at=AT, outcome="failed", posting="invoice", operation="create", message=LEDGER_ERROR)
    group = GroupNotice(
        group_id=3,
        integration="books-dk",
        error_code="forbidden",
        title=LEDGER_ERROR,
        first_seen=AT,
        last_seen=AT,
        counts={"failed": 2},
        sample=(GroupMember(doc, "invoice"),),
    )
    attention = AttentionGroup(
        group_id=3,
        integration="books-dk",
        code="forbidden",
        title=LEDGER_ERROR,
        failed=2,
        first_seen=AT,
        last_seen=AT,
        muted_until=None,
        documents=[("7", "bill", HOSTILE)],
    )
    outage = OutageNotice(
        integration="books-dk", kind="sandbox", since=AT, waiting=3, last_error=LEDGER_ERROR
    )
    return {
        "posting": posting_message(PostingNotice(doc, posting, last_attempt_at=AT)),
        "group": group_message(group),
        "thread reply": thread_reply([entry]),
        "show log": log_page(doc, "books-dk", 1, [entry], 0, has_more=False),
        "attention": attention_answer([attention]),
        "app home": home_view([], [attention], can_change=True),
        "outage": outage_message(outage),
        "outcome": outcome_note([LEDGER_ERROR, HOSTILE]),
    }


@pytest.mark.parametrize("kind", list(every_kind()))
def test_every_builder_masks_secrets_and_shows_plain_text(kind: str) -> None:
    remember_secret(INTEGRATION_SECRET)
    body = every_kind()[kind]
    data = {"text": body.text, "blocks": body.blocks} if isinstance(body, SlackBody) else body
    sent = json.dumps(data, ensure_ascii=False)
    for token in TOKENS:
        assert token not in sent, token
    for text in _texts(data):
        assert not set(text) & set(INVISIBLE), repr(text)
        for mark in FORMATTED:
            assert mark not in text, (mark, text)


def test_usage_answer_does_not_echo_a_mention() -> None:
    body = usage_answer("/ledger", "unknown command '<!here>'", "status")
    sent = json.dumps({"text": body.text, "blocks": body.blocks})
    assert "<!here>" not in sent and "&lt;!here&gt;" in sent


async def test_unknown_command_with_a_mention_is_answered_escaped(slack: SlackHarness) -> None:
    answer = await command(slack, "<!here> <!channel> <@U0BOSS>")
    sent = json.dumps(answer)
    assert "unknown command" in sent
    assert "<!here>" not in sent and "<!channel>" not in sent and "<@U0BOSS>" not in sent


def test_configured_integration_secrets_are_masked_once_a_connector_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.logs import mask

    monkeypatch.setenv("BOOKS_GRANT", "grant-from-the-environment-42")
    cfg = IntegrationConfig.model_validate(
        {
            "name": "economic-dk",
            "kind": "economic",
            "base_url": "http://127.0.0.1:9",
            "app_secret_token": "literal-app-secret-token-77",
            "agreement_grant_token": "env:BOOKS_GRANT",
        }
    )
    connector_for(cfg)
    text = mask("401: grant-from-the-environment-42 / literal-app-secret-token-77 refused")
    assert "grant-from" not in text and "literal-app" not in text and text.count("[redacted]") == 2
