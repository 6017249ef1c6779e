"""Text from documents and ledgers as Slack shows it: one line, no hidden characters, no
formatting, no secrets.

A supplier may be called ``"Evil\\u202e A/S\\n:white_check_mark: *Synced by the CFO*"``
and a ledger's error may quote ``Authorization: Bearer …``. Every builder passes such
text through :func:`escape` (for ``mrkdwn``) or :func:`plain` (for ``plain_text``):

- control characters (C0, DEL, C1) and invisible format characters (Unicode ``Cf``:
  the bidi embeddings/overrides/isolates U+202A–U+202E and U+2066–U+2069, the marks
  U+200E/U+200F/U+061C, zero-width characters) are removed;
- every run of whitespace, newlines and line/paragraph separators included, becomes one
  space, so the text cannot start a line of its own;
- tokens, bearer credentials and the integrations' configured secrets are masked by
  :func:`bot.logs.mask`, the same masking as the JSON logs;
- for ``mrkdwn``, ``&``, ``<`` and ``>`` become entities (no mention, link or
  ``<url|label>``), and the formatting marks, which Slack's mrkdwn has no escape for,
  become look-alike characters that do not format: ``*`` -> ``∗`` (U+2217),
  ``~`` -> ``∼`` (U+223C), a backtick -> ``ˋ`` (U+02CB), and ``_`` -> ``ˍ`` (U+02CD)
  unless it sits inside a word (``INV_2026_1`` keeps its underscores: Slack never
  formats there). Visible look-alikes, not zero-width characters, so what a person
  reads and copies is what the document says, minus the styling.
"""

from __future__ import annotations

import re
import unicodedata

from bot.logs import mask

#: Unicode categories never shown: controls and invisible format characters (bidi, ZW…)
_HIDDEN = frozenset({"Cc", "Cf"})
_MARKS = {"*": "\u2217", "~": "\u223c", "`": "\u02cb"}
_MARK = re.compile(r"[*~`]")
#: an underscore that could open or close italics: not between two letters or digits
_LOOSE_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")


def plain(text: object) -> str:
    """One line of visible text with secrets masked (for ``plain_text`` and fallbacks)."""
    raw = " ".join(str(text).split())  # newlines, tabs, U+2028/9, U+0085 ... -> one space
    if not raw.isprintable():  # quick path: most text has nothing to remove
        raw = " ".join("".join(c for c in raw if unicodedata.category(c) not in _HIDDEN).split())
    return mask(raw)


def escape(text: object) -> str:
    """:func:`plain`, then safe inside ``mrkdwn``: no entity, mention, link or formatting."""
    shown = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    shown = _MARK.sub(lambda m: _MARKS[m.group()], shown)
    return _LOOSE_UNDERSCORE.sub("\u02cd", shown)
