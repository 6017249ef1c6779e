"""The bot's ``/slack/events`` as Slack reaches it: signed POSTs and a three-second ack.

Each request is signed with the signing secret (``v0=`` HMAC over
``v0:timestamp:body``) and carries Slack's headers; an answer later than
:data:`ACK_SECONDS`, or none, is what Slack would call a timeout.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.local_slack.workspace import Workspace

ACK_SECONDS = 3.0  # Slack gives up on an ack after three seconds


@dataclass(frozen=True)
class Delivery:
    """How the bot answered one request."""

    status: int  # 0: no answer (timeout, connection refused)
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Acknowledged (HTTP 200)."""
        return self.status == 200

    def json(self) -> dict[str, Any] | None:
        """The ack body as a JSON object, if it is one."""
        try:
            data = json.loads(self.body) if self.body.strip() else None
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def slack_error(self) -> str:
        """What Slack calls it when the app did not ack."""
        if self.status == 0:
            return "operation_timeout" if self.error == "timeout" else "dispatch_failed"
        return "dispatch_failed"


class EventsEndpoint:
    """Signs and POSTs requests to the bot's ``/slack/events``; logs each in the traffic log."""

    def __init__(self, workspace: Workspace, events_url: str, signing_secret: str):
        self.ws = workspace
        self.events_url = events_url
        self.signer = SignatureVerifier(signing_secret)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        """Close the HTTP session used to reach the bot."""
        if self._session is not None:
            await self._session.close()

    async def deliver(self, body: str, content_type: str, what: str) -> Delivery:
        """POST one signed request to the bot, as Slack does; never raises."""
        ts = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signer.generate_signature(timestamp=ts, body=body),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                self.events_url,
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=ACK_SECONDS),
            ) as r:
                result = Delivery(r.status, await r.text())
        except TimeoutError:
            result = Delivery(0, "", "timeout")
        except aiohttp.ClientError as exc:
            result = Delivery(0, "", type(exc).__name__)
        self.ws.log("bot", what, str(result.status) if result.status else result.error or "?")
        return result

    async def form(self, fields: dict[str, str], what: str) -> Delivery:
        """A form-encoded request (a slash command's body)."""
        return await self.deliver(urllib.parse.urlencode(fields), "application/x-www-form-urlencoded", what)

    async def payload(self, payload: dict[str, Any], what: str) -> Delivery:
        """An interaction payload (``payload=<json>``, form-encoded)."""
        return await self.form({"payload": json.dumps(payload)}, what)
