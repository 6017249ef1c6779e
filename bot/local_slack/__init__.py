"""A local stand-in for the part of Slack ledgerops uses (sandbox mode).

- ``workspace``: the stand-in's memory (channels, threads, ephemerals, views),
  holding ``members`` (people, the bot, Slackbot), ``channel`` (messages,
  ephemerals), ``views`` (the modal and the App Home) and ``response_url``;
- ``web_api``: ``/slack-api/{method}``, the Web API subset the bot calls;
- ``interactions``: clicks, commands, modal submits and App Home visits, sent to
  the bot's ``/slack/events`` signed like Slack's (``delivery``); the bot's
  answers shown as Slack shows them (``answers``, ``modal``);
- ``page`` and ``static/``: the page a person uses, live over server-sent events;
  ``page_state``: what one user sees there, as JSON;
- ``ledger_panel``: switches that make the sandbox ledger misbehave;
- ``server``: the bot and the stand-in on one server bound to 127.0.0.1.
"""

from __future__ import annotations

from bot.local_slack.server import SandboxServer, start_sandbox
from bot.local_slack.stand_in import LocalSlack

__all__ = ["LocalSlack", "SandboxServer", "start_sandbox"]
