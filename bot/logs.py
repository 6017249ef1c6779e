"""Structured logs: one JSON object per line, with posting and document ids, never tokens."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# attributes every LogRecord has; anything else was passed in ``extra=`` and is kept
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# bearer tokens, Slack tokens and Fernet-looking keys are masked whatever logs them
_SECRET = re.compile(r"(xox[abpr]-[\w-]+|xapp-[\w-]+|Bearer\s+\S+)")


def _mask(text: str) -> str:
    return _SECRET.sub("[redacted]", text)


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
                event[key] = value if isinstance(value, (int, float, bool, type(None))) \
                    else _mask(str(value)) if not isinstance(value, (list, dict)) else value
        if record.exc_info:
            event["error"] = _mask(self.formatException(record.exc_info))
        return json.dumps(event, default=str)


def configure(level: int = logging.INFO) -> None:
    """Send every log line to stderr as JSON."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
