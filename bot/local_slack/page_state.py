"""What one user sees on the page, as JSON: the channels, their ephemerals, the modal, the App Home.

Pure reads of the workspace; the page sends the whole picture (``GET
/local-slack/state`` and every server-sent event) and draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.local_slack.channel import Message
from bot.local_slack.views import View
from bot.local_slack.workspace import Workspace

SHOWN_MESSAGES = 200
SHOWN_TRAFFIC = 12


def workspace_shown(ws: Workspace, allowed: Callable[[str], bool]) -> dict[str, Any]:
    """Who and what the page names: the team, the bot, the people, the channels."""
    return {
        "team": {"id": ws.team_id, "name": ws.team_name},
        "bot": {"id": ws.bot.id, "name": ws.bot.name},
        "command": ws.commands[0] if ws.commands else "/ledger",
        "dm": ws.dm_channel,  # the app's own conversation: its ephemerals show on Home
        "users": [
            {"id": p.id, "name": p.name, "real_name": p.real_name, "title": p.title, "allowed": allowed(p.id)}
            for p in ws.people.values()
            if not p.is_bot
        ],
        "people": {
            p.id: {"name": p.name, "real_name": p.real_name, "is_bot": p.is_bot} for p in ws.people.values()
        },
        "usergroups": {gid: handle for gid, (handle, _) in ws.usergroups.items()},
        "channels": [channel_shown(ws, cid, name) for cid, name in ws.channels.items()],
    }


def channel_shown(ws: Workspace, channel: str, name: str) -> dict[str, Any]:
    """A channel's last messages, each with its thread replies."""
    msgs = ws.messages[channel]
    top = [m for m in msgs.values() if not m.thread_ts][-SHOWN_MESSAGES:]
    return {
        "id": channel,
        "name": name,
        "messages": [
            {**message_shown(m), "replies": [message_shown(msgs[r]) for r in m.replies if r in msgs]}
            for m in top
        ],
    }


def message_shown(m: Message) -> dict[str, Any]:
    """One message of a channel."""
    return {
        "ts": m.ts,
        "user": m.user,
        "text": m.text,
        "blocks": m.blocks,
        "attachments": m.attachments,
        "edited": bool(m.edited),
        "bot": bool(m.bot_id),
    }


def mine_shown(ws: Workspace, user: str) -> dict[str, Any]:
    """What only ``user`` sees: their ephemerals, their modals, their App Home, Slack's notices."""
    home = ws.homes.get(user)
    return {
        "ephemerals": [
            {
                "ts": e.ts,
                "channel": e.channel,
                "text": e.text,
                "blocks": e.blocks,
                "thread_ts": e.thread_ts,
                "author": e.author,
            }
            for e in ws.ephemerals.get(user, [])
        ],
        "modals": [view_shown(v) for v in ws.modals.get(user, [])],
        "home": view_shown(home) if home else None,
        "notices": ws.notices.get(user, []),
    }


def view_shown(v: View) -> dict[str, Any]:
    """A modal or the App Home, with the errors Slack shows beside its fields."""
    return {"id": v.id, "view": v.body, "errors": v.errors, "hash": v.hash}


def traffic_shown(ws: Workspace) -> list[dict[str, Any]]:
    """The last lines of the traffic log."""
    return [
        {"at": t.at, "direction": t.direction, "what": t.what, "status": t.status}
        for t in list(ws.traffic)[-SHOWN_TRAFFIC:]
    ]
