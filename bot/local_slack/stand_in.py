"""The stand-in as one object: workspace, Web API, interactions, page and ledger panel."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from bot.local_slack.channel_file import FILE_NAME, ChannelFile
from bot.local_slack.interactions import Interactions
from bot.local_slack.ledger_panel import LedgerPanel
from bot.local_slack.page import Page
from bot.local_slack.web_api import WebApi
from bot.local_slack.workspace import Person, Workspace
from bot.runtime import Runtime
from bot.sandbox.settings import SANDBOX_USERGROUPS, SANDBOX_USERS, SandboxUser


class LocalSlack:
    """Slack as far as the bot can tell, served next to the bot on one aiohttp application.

    ``base_url`` is where that application listens (``http://127.0.0.1:3000``):
    interactions go to ``{base_url}/slack/events`` over HTTP, signed with the
    runtime's signing secret; the bot's Web API calls arrive at
    ``{base_url}/slack-api/`` and must carry the runtime's bot token.
    """

    def __init__(
        self,
        runtime: Runtime,
        base_url: str,
        *,
        users: Sequence[SandboxUser] = SANDBOX_USERS,
        usergroups: dict[str, tuple[str, tuple[str, ...]]] | None = None,
        extra_commands: Sequence[str] = (),
        demo_status: Callable[[], Awaitable[str | None]] | None = None,
        team_name: str = "Finance (sandbox)",
        folder: Path | None = None,
    ):
        env, config = runtime.env, runtime.config
        if env.slack_bot_token is None or env.slack_signing_secret is None:
            raise ValueError("the stand-in needs the runtime's bot token and signing secret")
        base = base_url.rstrip("/")
        self.runtime = runtime
        self.config = config.slack
        people = [Person(u.id, u.name, u.real_name, u.title) for u in users]
        known = {p.id for p in people}
        # Someone on allowed_users of a config file we were given still gets a seat.
        people += [Person(u, u.lower(), u) for u in self.config.allowed_users if u not in known]
        self.workspace = Workspace(
            team_name=team_name,
            channels=_channels(runtime),
            people=people,
            usergroups=SANDBOX_USERGROUPS if usergroups is None else usergroups,
            bot=Person("U0LEDGEROPS", "ledgerops", "ledgerops", is_bot=True),
            commands=[self.config.command, *extra_commands],
        )
        self.default_user = people[0].id
        # Kept beside the sandbox's database and ledger, so a restart shows the same channel.
        self.channel_file = ChannelFile(self.workspace, folder / FILE_NAME) if folder else None
        if self.channel_file is not None:
            self.channel_file.load()
            self.workspace.on_messages_changed = self.channel_file.changed
        self.api = WebApi(self.workspace, env.slack_bot_token.get_secret_value())
        self.interactions = Interactions(
            self.workspace,
            f"{base}/slack/events",
            env.slack_signing_secret.get_secret_value(),
            f"{base}/slack-hooks",
        )
        self.panel = LedgerPanel(runtime, demo_status)
        self.page = Page(self)

    def mount(self, app: web.Application) -> None:
        """Add the Web API, ``response_url`` and page routes to the bot's application."""
        self.api.mount(app)
        app.router.add_post("/slack-hooks/{token}", self.interactions.hook)
        self.page.mount(app)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)

    def allowed(self, user: str) -> bool:
        """Whether the bot's config lets ``user`` act (shown next to the user picker)."""
        if user in self.config.allowed_users:
            return True
        group = self.workspace.usergroups.get(self.config.allowed_usergroup or "")
        return bool(group and user in group[1])

    async def _shutdown(self, _app: web.Application) -> None:
        self.workspace.close()  # the page streams end, so the server can stop

    def save(self) -> None:
        """Write the channel file now (a clean stop, after the bot's last message)."""
        if self.channel_file is not None:
            self.channel_file.save()

    async def _cleanup(self, _app: web.Application) -> None:
        await self.interactions.aclose()


def _channels(runtime: Runtime) -> dict[str, str]:
    """The configured channels, named like a finance team would name them."""
    channels: dict[str, str] = {}
    if runtime.config.slack.channel:
        channels[runtime.config.slack.channel] = "finance"
    for integ in runtime.config.integrations:
        if integ.channel and integ.channel not in channels:
            channels[integ.channel] = f"finance-{integ.name}"
    return channels or {"C0FINANCE": "finance"}
