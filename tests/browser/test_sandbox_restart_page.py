"""The sandbox page after a restart: the same channel, the same ledger, a banner that says so."""

from __future__ import annotations

from typing import Any

import pytest

from bot.local_slack import SandboxServer
from tests.browser.conftest import OUTPUT
from tests.browser.support import open_sandbox
from tests.support import eventually

pytestmark = pytest.mark.browser


async def _demo_done(server: SandboxServer) -> bool:
    return bool(server.demo and server.demo.finished.is_set())


async def test_restarted_sandbox_shows_what_it_showed(browser: Any, sqlite_url: str) -> None:
    from playwright.async_api import expect

    async with open_sandbox(sqlite_url) as first:
        await eventually(lambda: _demo_done(first), timeout=60, message="the demo script")
        assert first.runtime.notifier is not None
        await first.runtime.notifier.flush()
        vouchers = len(first.slack.panel.ledger("sandbox-dk").vouchers)

    folder = OUTPUT / "test_restarted_sandbox_shows_what_it_showed"
    folder.mkdir(parents=True, exist_ok=True)
    async with open_sandbox(sqlite_url) as server:
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        page = await context.new_page()
        page.set_default_timeout(20_000)
        await page.goto(server.url)
        dhl = page.locator("#messages article.msg:not(.ephemeral)", has_text="DHL Express Denmark")
        await expect(dhl).to_contain_text("could not be posted")
        await expect(dhl).to_have_count(1)
        await expect(page.locator("#messages article.msg:not(.ephemeral)")).to_have_count(4)
        await expect(page.locator(".demo-status")).to_contain_text("Resumed where the sandbox stopped")
        ledger = page.locator("section.ledger")
        await expect(ledger).to_contain_text(f"Vouchers ({vouchers})", ignore_case=True)
        await page.screenshot(path=str(folder / "01-after-restart.png"))
        await context.close()
