"""The App Home tab: status per integration, what needs attention, pause/resume.

Published when a person opens it, and again (debounced) when something it
shows changes, for the people who opened it in the last hour.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import ActionId, IntegrationRef
from bot.home.view import home_view
from bot.ops.team import announce
from bot.outbox.delivery import call
from bot.runtime import Runtime
from bot.slack import SlackBot
from handlers.buttons import Press, listen
from sync.admin import pause_integration
from sync.changes import Change
from sync.overview import booked_not_sent, integration_status, needs_attention

log = logging.getLogger(__name__)

VIEWER_TTL = timedelta(hours=1)
REFRESH_DELAY = 2.0  # seconds: a burst of changes becomes one refresh


class HomeTab:
    """Listeners of the App Home and its buttons."""

    def __init__(self, runtime: Runtime, bot: SlackBot):
        self.runtime = runtime
        self.engine = runtime.engine
        self.bot = bot
        self.viewers: dict[str, datetime] = {}
        self._refresh: asyncio.Task[None] | None = None

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_opened)
        for action_id in (ActionId.PAUSE, ActionId.RESUME):
            listen(app, action_id, self.switch, self.unreadable)
        self.engine.feed.subscribe(self.on_changes)

    async def publish(self, user: str) -> None:
        """Render the home tab for one person from the database."""
        async with self.engine.db.sessions() as s:
            statuses = await integration_status(s, self.engine.clock())
            groups = await needs_attention(s, limit=10)
            booked = await booked_not_sent(s, limit=10)
        can_change = await self.bot.gatekeeper.allows(user)
        result = await call(
            self.bot.client.views_publish(user_id=user, view=self.view(statuses, groups, can_change, booked)),
            "views.publish",
        )
        if not result.ok:
            log.warning("could not publish the home tab: %s", result.error)

    def view(self, statuses: Any, groups: Any, can_change: bool, booked: Any) -> dict[str, object]:
        """The tab with the scheduled jobs of this process and the README link."""
        jobs = self.runtime.scheduler.overview() if self.runtime.scheduler else []
        return home_view(
            statuses,
            groups,
            can_change,
            booked=booked,
            jobs=jobs,
            readme_url=self.runtime.config.slack.readme_url,
        )

    async def on_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event.get("user")
        if not isinstance(user, str) or not user:
            return  # an app_home_opened names its user; anything else is not Slack's
        self.viewers[user] = self.engine.clock()
        await self.publish(user)

    def on_changes(self, _changes: list[Change]) -> None:
        """Something shown may have changed: refresh soon, once for a burst."""
        if not self.viewers or (self._refresh and not self._refresh.done()):
            return
        try:
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_all())
        except RuntimeError:  # no loop (a sync caller): the next opening shows it
            return

    async def _refresh_all(self) -> None:
        await asyncio.sleep(REFRESH_DELAY)
        cutoff = self.engine.clock() - VIEWER_TTL
        for user, opened in list(self.viewers.items()):
            if opened < cutoff:
                self.viewers.pop(user, None)
                continue
            await self.publish(user)

    async def switch(self, press: Press, ref: IntegrationRef) -> None:
        """Pause or resume the integration the button names, then show the tab again."""
        if ref.integration in self.engine.integrations:
            change = await pause_integration(
                self.engine, ref.integration, press.action is ActionId.PAUSE, press.user
            )
            await announce(self.runtime, change.integration, change.activity_id)
        await self.publish(press.user)

    async def unreadable(self, press: Press, _exc: ValueError) -> None:
        """A value we did not send names no integration: change nothing, show the tab again."""
        await self.publish(press.user)
