"""The sandbox page in Chromium: what a finance person sees and clicks.

Each test opens a fresh sandbox whose demo data makes problems on purpose
(bot/sandbox/demo.py). Waiting is Playwright's own: ``expect(...)`` retries until
its deadline, so no test sleeps. Screenshots of every step land in
test-output/browser/<test>/.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.local_slack import SandboxServer
from tests.browser.conftest import Shots

pytestmark = pytest.mark.browser

SLOW = 30_000  # ms: the demo retries a bill three times before it fails


def _expect() -> Any:
    from playwright.async_api import expect

    return expect


def message(page: Any, text: str) -> Any:
    """The channel message (not thread, not ephemeral) that mentions ``text``."""
    return page.locator("#messages article.msg:not(.ephemeral)", has_text=text)


async def test_failure_then_resync_turns_the_message_synced(page: Any, shots: Shots) -> None:
    expect = _expect()
    dhl = message(page, "DHL Express Denmark")
    await expect(dhl).to_contain_text("could not be posted", timeout=SLOW)
    await expect(dhl).to_contain_text("Could not connect to the ledger")
    await expect(page.locator(".demo-status")).to_contain_text("unreachable on purpose")
    await shots("failure-in-channel")

    ledger = page.locator("section.ledger")
    await ledger.get_by_role("button", name="Make reachable").click()
    await expect(ledger.locator(".ledger-status")).to_have_text("Reachable")
    await shots("ledger-reachable-again")

    await dhl.get_by_role("button", name="Resync invoice posting").click()
    await expect(dhl).to_contain_text("is synced", timeout=SLOW)
    await expect(dhl).to_contain_text("Fixed by @Alice (finance)")
    await expect(dhl.get_by_role("button", name="Resync invoice posting")).to_have_count(0)
    await expect(dhl).to_have_count(1)  # rebuilt in place, not posted again
    await shots("synced")


async def test_user_not_allowed_sees_the_refusal(page: Any, shots: Shots) -> None:
    expect = _expect()
    catering = message(page, "Kantine & Co")
    await expect(catering).to_contain_text("could not be posted", timeout=SLOW)
    # The supplier's "<!channel>" arrived escaped: it shows as text and pings nobody.
    await expect(catering).to_contain_text("Kantine & Co <!channel>")
    await expect(catering.locator(".mention.broadcast")).to_have_count(0)

    await page.get_by_label("Acting as").select_option("U0MALLORY")
    await expect(page.get_by_label("Acting as")).to_have_value("U0MALLORY")
    await catering.get_by_role("button", name="Resync invoice posting").click()
    refusal = page.locator("#messages article.msg.ephemeral", has_text="not allowed")
    await expect(refusal).to_contain_text("You are not allowed to resync invoice postings")
    await expect(refusal).to_contain_text("Only visible to you")
    await expect(catering).to_contain_text("could not be posted")  # nothing changed
    await shots("refused", focus=refusal)

    await page.get_by_label("Acting as").select_option("U0ALICE")
    await expect(page.locator("#messages article.msg.ephemeral")).to_have_count(0)
    await catering.get_by_role("button", name="Ignore").click()
    dialog = page.get_by_role("alertdialog", name="Ignore this posting?")
    await expect(dialog).to_be_visible()
    await shots("confirm-dialog")
    await dialog.get_by_role("button", name="Ignore").click()
    await expect(catering).to_contain_text("is ignored", timeout=SLOW)
    await expect(catering).to_contain_text("Ignored by @Alice (finance)")
    await shots("ignored-by-alice", focus=catering)


async def test_slash_command_status_answers_privately(
    page: Any, shots: Shots, sandbox: SandboxServer
) -> None:
    expect = _expect()
    await expect(page.locator("#live")).to_have_text("live")
    box = page.get_by_label("Message", exact=True)
    await box.fill("/ledger status")
    await box.press("Enter")
    answer = page.locator("#messages article.msg.ephemeral").last
    await expect(answer).to_be_visible()
    await shots("ledger-status")
    await expect(answer).to_contain_text("sandbox-dk")
    await expect(answer).to_contain_text("Only visible to you")


async def test_app_home_opens(page: Any, shots: Shots, sandbox: SandboxServer) -> None:
    expect = _expect()
    await expect(page.locator("#live")).to_have_text("live")
    await page.get_by_role("button", name="ledgerops").click()
    home = page.locator("#home")
    await expect(page.get_by_role("tab", name="Home")).to_be_visible()
    await expect(home).not_to_be_empty()
    await expect(home).to_contain_text("sandbox-dk", timeout=SLOW)
    await shots("app-home")


async def test_modal_inputs_errors_and_submit(page: Any, shots: Shots, sandbox: SandboxServer) -> None:
    """A command that opens a modal with every input the bot may use (a test listener)."""
    expect = _expect()
    sandbox.slack.workspace.commands.append("/ledgertest")
    assert sandbox.runtime.slack is not None
    _modal_listeners(sandbox.runtime.slack.app)
    await expect(page.locator("#live")).to_have_text("live")
    box = page.get_by_label("Message", exact=True)
    await box.fill("/ledgertest")
    await box.press("Enter")
    dialog = page.get_by_role("dialog", name="Resync failed postings")
    await expect(dialog).to_be_visible()
    await shots("modal-open")
    await dialog.get_by_role("button", name="Resync").click()
    await expect(dialog.locator(".bk-error")).to_contain_text(["Please fill out this field."])
    await dialog.get_by_label("Why").fill("too early")
    await dialog.get_by_label("Integration").select_option("sandbox-dk")
    await dialog.get_by_label("Since").fill("2026-11-01")
    await dialog.get_by_label("Only these").check()
    await dialog.get_by_role("button", name="Resync").click()
    # a list: the three "Please fill out" errors must give way to the bot's one
    await expect(dialog.locator(".bk-error")).to_have_text(["Say why in more words"])
    await shots("modal-error-from-bot")
    await dialog.get_by_label("Why").fill("the account exists now")
    await dialog.get_by_role("button", name="Resync").click()
    await expect(dialog).to_have_count(0)
    await expect(page.locator("#messages article.msg.ephemeral").last).to_contain_text(
        "sandbox-dk since 2026-11-01 (only these): the account exists now"
    )
    await shots("modal-submitted")


def _modal_listeners(bolt: Any) -> None:
    text = lambda t: {"type": "plain_text", "text": t}  # noqa: E731
    option = lambda v: {"text": text(v), "value": v}  # noqa: E731
    modal = {
        "type": "modal",
        "callback_id": "bulk-test",
        "title": text("Resync failed postings"),
        "submit": text("Resync"),
        "close": text("Cancel"),
        "blocks": [
            {"type": "header", "text": text("412 documents")},
            {
                "type": "input",
                "block_id": "why",
                "label": text("Why"),
                "element": {"type": "plain_text_input", "action_id": "v", "multiline": True},
            },
            {
                "type": "input",
                "block_id": "integ",
                "label": text("Integration"),
                "element": {
                    "type": "static_select",
                    "action_id": "v",
                    "options": [option("sandbox-dk"), option("economic-dk")],
                },
            },
            {
                "type": "input",
                "block_id": "states",
                "label": text("States"),
                "optional": True,
                "element": {
                    "type": "multi_static_select",
                    "action_id": "v",
                    "options": [option("failed"), option("booked")],
                },
            },
            {
                "type": "input",
                "block_id": "since",
                "label": text("Since"),
                "element": {"type": "datepicker", "action_id": "v"},
            },
            {
                "type": "input",
                "block_id": "only",
                "label": text("Documents"),
                "optional": True,
                "element": {"type": "checkboxes", "action_id": "v", "options": [option("Only these")]},
            },
        ],
    }

    @bolt.command("/ledgertest")
    async def open_modal(ack: Any, client: Any, body: dict[str, Any]) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=modal)

    @bolt.view("bulk-test")
    async def submitted(ack: Any, view: dict[str, Any], body: dict[str, Any], client: Any) -> None:
        v = view["state"]["values"]
        why = v["why"]["v"]["value"]
        if len(why.split()) < 3:
            await ack(response_action="errors", errors={"why": "Say why in more words"})
            return
        await ack()
        only = " (only these)" if v["only"]["v"]["selected_options"] else ""
        await client.chat_postEphemeral(
            channel="C0FINANCE",
            user=body["user"]["id"],
            text=f"{v['integ']['v']['selected_option']['value']} since "
            f"{v['since']['v']['selected_date']}{only}: {why}",
        )
