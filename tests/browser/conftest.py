"""Browser fixtures: Debian's Chromium driven by Playwright for Python, one sandbox per test.

Without Chromium the tests skip, saying how to install it; under
``LEDGEROPS_REQUIRE_ALL=1`` they fail instead (``need()``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.local_slack import SandboxServer
from tests.browser.support import open_sandbox
from tests.conftest import need

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"


@pytest.fixture
async def sandbox(sqlite_url: str) -> AsyncIterator[SandboxServer]:
    """The sandbox with its demo data, on a test database and a free port."""
    async with open_sandbox(sqlite_url) as server:
        yield server


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium, or a skip saying how to install it."""
    need(
        CHROMIUM.exists(),
        f"Chromium is not installed at {CHROMIUM}: "
        "apt-get install -y chromium (the browser tests drive Debian's Chromium)",
    )
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:  # pragma: no cover - the dev extra installs it
        need(False, "playwright is not installed: pip install -e '.[dev]'")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, sandbox: SandboxServer) -> AsyncIterator[Any]:
    """A page on the sandbox; a JavaScript error anywhere fails the test."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    tab = await context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.set_default_timeout(20_000)
    await tab.goto(sandbox.url)
    yield tab
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


class Shots:
    """Numbered screenshots of each step, under test-output/browser/<test>/."""

    def __init__(self, page: Any, folder: Path):
        self.page = page
        self.folder = folder
        self.count = 0

    async def __call__(self, name: str, focus: Any = None) -> Path:
        """Save the page as it is now (with ``focus``, a locator, scrolled into view)."""
        if focus is not None:
            # The page re-renders a message when it changes, so the element found may be
            # replaced before the scroll lands; the locator then finds the new one.
            for attempt in range(5):
                try:
                    await focus.evaluate("element => element.scrollIntoView({block: 'center'})")
                    break
                except Exception as exc:  # playwright's Error: element detached mid-call
                    if "not attached" not in str(exc) or attempt == 4:
                        raise
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        await self.page.screenshot(path=str(path))
        return path


@pytest.fixture
def shots(page: Any, request: pytest.FixtureRequest) -> Shots:
    folder = OUTPUT / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(page, folder)
