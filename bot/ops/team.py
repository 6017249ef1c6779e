"""Team changes in the channel: who paused, resumed or mapped what.

The person who asked gets a private answer; the channel gets a message through the
outbox (subject ``team_change``: the ``activity`` row), rebuilt from the database
like every other message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.block_kit import SlackBody
from bot.commands.activity import team_change_message
from bot.outbox.coverage import TEAM
from storage.db import Session
from storage.queries import outbox
from sync.log import activity_entry

if TYPE_CHECKING:  # the runtime holds the notifier, which renders these messages
    from bot.runtime import Runtime

#: the actions announced in the channel
ANNOUNCED = frozenset({"pause", "resume", "map"})


async def load_team_change(s: Session, activity_id: int) -> SlackBody | None:
    """The announcement of one team change (``None``: no such row, or not a team change)."""
    entry = await activity_entry(s, activity_id)
    if entry is None or entry.action not in ANNOUNCED or entry.outcome != "ok":
        return None
    return team_change_message(entry)


async def announce(runtime: Runtime, integration: str, activity_id: int | None) -> None:
    """Queue the channel's message about a team change (none when nothing changed or no Slack)."""
    notifier = runtime.notifier
    iid = runtime.engine.integration_ids.get(integration)
    if activity_id is None or notifier is None or iid is None:
        return
    channel = notifier.channel_of(iid)
    if channel is None:
        return
    now = runtime.engine.clock()
    async with runtime.db.sessions() as s, s.begin():
        await outbox.ensure_row(s, TEAM, activity_id, channel, now, now)
    notifier.poke()
