"""The workspace's members: the people on the page, the bot user and Slackbot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SLACKBOT = "USLACKBOT"


@dataclass(frozen=True)
class Person:
    """A member of the workspace (a human or the bot user)."""

    id: str
    name: str
    real_name: str
    title: str = ""
    is_bot: bool = False

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """``users.info``'s ``user`` object."""
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.real_name,
            "is_bot": self.is_bot,
            "tz": "Europe/Copenhagen",
            "profile": {"real_name": self.real_name, "display_name": self.name, "title": self.title},
        }
