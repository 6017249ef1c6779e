"""Who may press which button, and the audit trail of every press.

``[slack].allowed_users`` and the members of ``[slack].allowed_usergroup``
(``usergroups.users.list``, cached briefly) may act. Nobody else may, and
with neither configured nobody may: a bot that can change the books is
closed until someone names who runs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.config import SlackConfig
from bot.outbox.delivery import call
from storage.db import Database
from storage.models import Activity

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class Gatekeeper:
    """Answers "may this user do that?" from the config and the user group."""

    def __init__(self, config: SlackConfig, client: AsyncWebClient, clock: Clock, ttl_seconds: float = 60.0):
        self.users = frozenset(config.allowed_users)
        self.usergroup = config.allowed_usergroup
        self.client = client
        self.clock = clock
        self.ttl = timedelta(seconds=ttl_seconds)
        self._members: frozenset[str] = frozenset()
        self._fresh_until: datetime | None = None
        self._lock = asyncio.Lock()

    async def allows(self, user_id: str | None) -> bool:
        """True when the user is on the allow-list or in the allowed user group."""
        if not user_id:
            return False
        if user_id in self.users:
            return True
        if not self.usergroup:
            return False
        return user_id in await self.group_members()

    async def group_members(self) -> frozenset[str]:
        """Members of the allowed user group; a failed look-up keeps the last known list."""
        if self._fresh_until and self._fresh_until > self.clock():
            return self._members
        async with self._lock:  # fifty clicks at once ask Slack once
            if self._fresh_until and self._fresh_until > self.clock():
                return self._members
            result = await call(
                self.client.usergroups_users_list(usergroup=self.usergroup), "usergroups.users.list"
            )
            if result.ok:
                self._members = frozenset(result.data.get("users") or [])
                self._fresh_until = self.clock() + self.ttl
            else:
                log.warning("cannot read user group %s: %s", self.usergroup, result.error)
        return self._members

    def ask(self) -> str:
        """Whom to ask, as Slack mentions (ids from our config, not free text)."""
        who = [f"<@{u}>" for u in sorted(self.users)[:5]]
        if self.usergroup:
            who.append(f"someone in <!subteam^{self.usergroup}>")
        if not who:
            return "your Slack admin to add you to `allowed_users` in ledgerops.toml"
        return " or ".join([", ".join(who[:-1]), who[-1]] if len(who) > 1 else who)


async def record(
    db: Database,
    at: datetime,
    *,
    actor: str | None,
    action: str,
    subject: str,
    outcome: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Keep one press of a button in ``activity`` (who, what, when, outcome)."""
    async with db.sessions() as s, s.begin():
        s.add(Activity(actor=actor, action=action, subject=subject, at=at, outcome=outcome, detail=detail))
