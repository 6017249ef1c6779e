"""The modal and the App Home: a view as Slack keeps it and shows it to apps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_VIEW_STACK = 3  # Slack's limit on pushed modals


@dataclass
class View:
    """A modal (one entry of a user's stack) or a user's App Home."""

    id: str
    user: str
    body: dict[str, Any]
    hash: str
    root_id: str
    previous_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """``modal`` or ``home``."""
        return str(self.body.get("type", "modal"))

    def to_slack(self, team_id: str, app_id: str, bot_id: str) -> dict[str, Any]:
        """The ``view`` object of ``views.*`` answers and of interaction payloads."""
        b = self.body
        return {
            "id": self.id,
            "team_id": team_id,
            "type": self.type,
            "blocks": b.get("blocks") or [],
            "private_metadata": b.get("private_metadata", ""),
            "callback_id": b.get("callback_id", ""),
            "state": {"values": self.values},
            "hash": self.hash,
            "title": b.get("title"),
            "close": b.get("close"),
            "submit": b.get("submit"),
            "clear_on_close": bool(b.get("clear_on_close")),
            "notify_on_close": bool(b.get("notify_on_close")),
            "external_id": b.get("external_id", ""),
            "previous_view_id": self.previous_id,
            "root_view_id": self.root_id,
            "app_id": app_id,
            "app_installed_team_id": team_id,
            "bot_id": bot_id,
        }
