"""Amounts on the sandbox page read as amounts: digits and spaces drawn in the text font.

Noto Color Emoji (which CI installs for legible screenshots) has glyphs for digits
and the space; with that font named in the page's font stack Chromium on Linux drew
"1,495.00 DKK" as "1 , 4 9 5 . 0 0   DKK", well over half as wide again as the same
text in a plain sans-serif. Each amount here is measured where it is rendered and
against the same text in ``sans-serif`` at the same size and weight.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest

from tests.browser.conftest import Shots
from tests.conftest import need

pytestmark = pytest.mark.browser

SLOW = 30_000  # ms: the demo retries the outage bill three times before it fails
#: the rendered text may differ from sans-serif by this much (the stack's first font
#: found may be another sans-serif); the emoji font's digits are 60 % wider
TOLERANCE = 0.1

#: the width of ``text`` where it first occurs under ``root``, and of the same text in
#: sans-serif at the same size and weight, placed next to it
MEASURE = """([selector, text]) => {
  const root = document.querySelector(selector);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let node = null, at = -1;
  while ((node = walker.nextNode())) {
    at = node.data.indexOf(text);
    if (at >= 0) break;
  }
  if (!node) return null;
  const range = document.createRange();
  range.setStart(node, at);
  range.setEnd(node, at + text.length);
  const rendered = range.getBoundingClientRect().width;
  const style = getComputedStyle(node.parentElement);
  const probe = document.createElement("span");
  probe.textContent = text;
  probe.style.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} sans-serif`;
  probe.style.whiteSpace = "pre";
  probe.style.position = "absolute";
  node.parentElement.appendChild(probe);
  const plain = probe.getBoundingClientRect().width;
  probe.remove();
  return {rendered, plain, family: style.fontFamily};
}"""

#: an emoji drawn through the alias, then the alias's load status ("loaded" when a local
#: emoji font was found, "error" when none)
EMOJI_FACE = """async () => {
  const probe = document.createElement("span");
  probe.textContent = "\u2705";
  document.body.appendChild(probe);
  await document.fonts.ready;
  const face = [...document.fonts].find(f => f.family.replace(/"/g, "") === "ledgerops emoji");
  if (face && face.status === "unloaded") await face.load().catch(() => null);
  probe.remove();
  return face ? face.status : "no such face";
}"""


async def _widths(page: Any, selector: str, text: str) -> dict[str, Any]:
    found = await page.evaluate(MEASURE, [selector, text])
    assert found is not None, f"{text!r} is not on the page under {selector}"
    return dict(found)


def _reads_as_text(found: dict[str, Any]) -> bool:
    return abs(found["rendered"] - found["plain"]) <= TOLERANCE * found["plain"]


@pytest.fixture
def emoji_font() -> None:
    """An installed emoji font: without one the bug cannot show (CI installs it)."""
    listed = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=False)
    need(
        "Emoji" in listed.stdout,
        "no emoji font: apt-get install -y fonts-noto-color-emoji (the font tests need one)",
    )


async def test_amounts_are_drawn_in_the_text_font(page: Any, shots: Shots, emoji_font: None) -> None:
    from playwright.async_api import expect

    dhl = page.locator("#messages article.msg:not(.ephemeral)", has_text="DHL Express Denmark")
    await expect(dhl).to_contain_text("1,495.00 DKK", timeout=SLOW)
    ledger = page.locator("section.ledger")
    await expect(ledger.locator(".vouchers td.amount").first).to_have_text(re.compile(r"^[\d,]+\.\d\d$"))
    await shots("amounts", focus=dhl)

    in_message = await _widths(page, "#messages", "1,495.00 DKK")
    voucher = await ledger.locator(".vouchers td.amount").first.text_content()
    in_ledger = await _widths(page, "section.ledger .vouchers", voucher)
    assert _reads_as_text(in_message), f"the message's amount is drawn in another font: {in_message}"
    assert _reads_as_text(in_ledger), f"the ledger panel's amount is drawn in another font: {in_ledger}"


async def test_emoji_are_drawn_in_the_emoji_font(page: Any, emoji_font: None) -> None:
    """The alias is only for emoji, and it finds the installed emoji font."""
    from playwright.async_api import expect

    await expect(page.locator("#live")).to_have_text("live")
    status = await page.evaluate(EMOJI_FACE)
    assert status == "loaded", f"the page's emoji font alias did not find a local emoji font: {status}"
