"""A ``response_url`` as the workspace remembers it: who may answer, where, how often, until when."""

from __future__ import annotations

from dataclasses import dataclass

HOOK_SECONDS = 30 * 60  # response_url: 30 minutes
HOOK_USES = 5  # response_url: five uses


@dataclass
class Hook:
    """A ``response_url``: where an interaction's answer may be sent later."""

    user: str
    channel: str
    source: str  # "command" | "message" | "ephemeral"
    message_ts: str | None
    expires: float
    uses: int = 0
    last_ephemeral: str | None = None  # what a command's replace_original replaces
    #: a command's own text, shown above its first answer in the channel (as Slack does)
    command_line: str | None = None
