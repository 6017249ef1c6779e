"""Reading an ingest body: JSON that is exact, shallow and storable (CONTRACT.md "Ingest").

Python's ``json`` is forgiving in ways that change money: of a key written twice
it keeps the last, so ``{"amount": "1250.00", "amount": "1"}`` would book 1.00.
It also recurses once per nesting level (a few thousand ``[`` end in a
``RecursionError``) and accepts ``\\u0000`` and lone surrogates, which
PostgreSQL refuses to store. Here a body is read so that each of these is a
400 naming the field instead of a silent merge or a 500.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

#: an event is about 5 levels deep (event, data, lines, line); no honest one nears this
MAX_DEPTH = 32
#: per event, so a body full of bad text answers with a readable list
MAX_SCREEN_ERRORS = 20

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class NestedTooDeeply(ValueError):
    """The body nests deeper than :data:`MAX_DEPTH` (or than Python's parser can)."""

    def __init__(self) -> None:
        super().__init__(f"nested too deeply (at most {MAX_DEPTH} levels)")


class RepeatedKeys(dict[str, Any]):
    """A JSON object that wrote some key more than once; ``repeated`` names them.

    The object itself keeps the first value; :func:`screen` turns the repeat into an
    error before anything reads it.
    """

    repeated: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    repeated: list[str] = []
    for key, value in pairs:
        if key in out:
            if key not in repeated:
                repeated.append(key)
            continue
        out[key] = value
    if not repeated:
        return out
    marked = RepeatedKeys(out)
    marked.repeated = repeated
    return marked


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity (as floats); JSON has neither.
    raise ValueError(f"{name} is not a JSON number")


def read_json(raw: bytes | str) -> Any:
    """Parse a body: numbers as ``Decimal`` (never a float), repeated keys marked.

    Raises ``ValueError`` (``NestedTooDeeply`` for nesting) on anything that is not JSON.
    """
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=_object)
    except RecursionError:
        raise NestedTooDeeply() from None


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored (NUL, lone surrogate), or ``None``."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain U+0000 (NUL)"
    return "must not contain a lone surrogate (U+D800-U+DFFF); send text as UTF-8"


def screen(raw: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Problems no field validation can see: repeated keys, nesting, unstorable text.

    Returns ``(location, message)`` pairs for one event. The walk is iterative, so a
    deep body costs no recursion here either, and builds a location only for
    containers and problems (it runs on every event of every batch).
    """
    problems: list[tuple[tuple[Any, ...], str]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), raw)]
    while stack and len(problems) < MAX_SCREEN_ERRORS:
        loc, node = stack.pop()
        if len(loc) >= MAX_DEPTH:
            problems.append((loc, str(NestedTooDeeply())))
            continue
        if isinstance(node, dict):
            problems.extend(
                ((*loc, key), "duplicate key: each key may appear once in an object")
                for key in getattr(node, "repeated", ())
            )
            problems.extend(((*loc, k), f"key {why}") for k in node if (why := unstorable(k)) is not None)
            children: Any = node.items()
        else:
            children = enumerate(node)
        for k, v in children:
            if isinstance(v, str):
                if (why := unstorable(v)) is not None:
                    problems.append(((*loc, k), why))
            elif isinstance(v, dict | list):
                stack.append(((*loc, k), v))
    return problems[:MAX_SCREEN_ERRORS]
