"""Structured logs: one JSON object per line, with posting and document ids, never tokens."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import IO, Any

# attributes every LogRecord has; anything else was passed in ``extra=`` and is kept
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Slack tokens (bot, user, app-level, refresh ...) and bearer/basic credentials are
# masked whatever logs them, wherever in the line they are
_SECRET = re.compile(r"(xox[a-z]-[\w-]+|xapp-[\w-]+|(?:Bearer|Basic)\s+[^\s\"',]+)", re.IGNORECASE)
# an ``extra=`` field named like a secret is never written, whatever its value looks like
_SECRET_KEY = re.compile(r"token|secret|password|authorization|api_key|credential", re.IGNORECASE)
REDACTED = "[redacted]"
#: the integrations' own secrets (``connector_for`` tells us each one it reads); shorter
#: values are not masked: they would blank out ordinary words
MIN_SECRET = 8
_known: set[str] = set()


def remember_secret(value: str | None) -> None:
    """A configured secret (an API key, a grant token …): masked from now on, wherever it shows."""
    if value and len(value) >= MIN_SECRET:
        _known.add(value)


def mask(text: str) -> str:
    """``text`` with tokens, bearer credentials and the integrations' secrets replaced.

    The one masking of ledgerops: the JSON logs and everything Slack shows use it.
    """
    for secret in sorted(_known, key=len, reverse=True):  # the longest first: no half-masked value
        text = text.replace(secret, REDACTED)
    return _SECRET.sub(REDACTED, text)


_mask = mask


def _clean(value: Any) -> Any:
    """A JSON-safe copy with secrets masked, however deep they sit in lists and dicts."""
    if isinstance(value, bool | int | float | type(None)):
        return value
    if isinstance(value, dict):
        return {str(k): REDACTED if _SECRET_KEY.search(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v) for v in value]
    return _mask(str(value))


class JsonLines(logging.Formatter):
    """Formats a record as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _mask(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = REDACTED if _SECRET_KEY.search(key) else _clean(value)
        if record.exc_info:
            event["error"] = _mask(self.formatException(record.exc_info))
        return json.dumps(event, default=str)


def configure(level: int = logging.INFO, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log line to stderr (or ``stream``) as JSON; returns the handler."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would repeat every request's headers; the app logs what matters
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
