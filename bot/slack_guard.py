"""The doors in front of bolt: Slack's signature (once), a body we can read, our workspace.

``/slack/events`` checks, before bolt parses anything (``handlers/slack_events.py``):

1. the signature and the timestamp (``SLACK_SIGNING_SECRET``; more than five
   minutes off: refused). A refusal is one log line with the reason, never
   the body: a body holds ``response_url`` s that let its reader post into the
   channel for half an hour;
2. that this (timestamp, signature) pair was not seen before in this process
   (a replay within the window runs nothing);
3. that the body is one Slack could have sent: JSON objects where bolt and our
   listeners expect them (else 400, never a 500).

Then bolt's first middleware (:class:`SameWorkspace`) drops any request of
another workspace than the one ``auth.test`` names for our bot token; that
one also guards Socket Mode.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)

#: Slack's own limit for a request's age
WINDOW_SECONDS = 5 * 60
#: signatures remembered at most (five minutes of 160 requests a second)
REMEMBERED = 50_000


class SignedRequests:
    """Signature, timestamp and replay checks of one process."""

    def __init__(self, signing_secret: str, *, now: Callable[[], float] = time.time):
        # Slack stamps requests with real time, so this clock is real time too.
        self.verifier = SignatureVerifier(signing_secret)
        self.now = now
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature -> its timestamp

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Why the request is not Slack's, or ``None`` when it is (checked in this order)."""
        stamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            return "timestamp is not a number of seconds"
        if abs(self.now() - int(stamp)) > WINDOW_SECONDS:
            return "timestamp is more than five minutes off"
        try:
            text = body.decode("utf-8")  # Slack signs text; the verifier would raise on bytes
        except UnicodeDecodeError:
            return "body is not UTF-8"
        if not self.verifier.is_valid(text, stamp, signature):
            return "signature does not match"
        return None

    def first_time(self, headers: Mapping[str, str]) -> bool:
        """Remember a verified request; ``False`` when it was seen before (a replay)."""
        stamp = int(headers["X-Slack-Request-Timestamp"])
        signature = headers["X-Slack-Signature"]  # an HMAC over timestamp and body
        oldest = self.now() - WINDOW_SECONDS
        while self._seen:
            first, seen_at = next(iter(self._seen.items()))
            if seen_at >= oldest and len(self._seen) < REMEMBERED:
                break
            self._seen.pop(first)
        if signature in self._seen:
            return False
        self._seen[signature] = stamp
        return True


# -- what a readable body looks like -------------------------------------------------------


class _Part(BaseModel):
    # Slack adds fields over time; only the ones bolt or we index into are checked.
    model_config = ConfigDict(extra="allow", strict=True)


class _Ref(_Part):
    id: str | None = None
    team_id: str | None = None


class _Action(_Part):
    action_id: str
    block_id: str | None = None
    value: str | None = None


class _State(_Part):
    values: dict[str, dict[str, dict[str, Any]]] = {}


class _View(_Part):
    type: str  # bolt reads it to tell a modal from a workflow step
    id: str | None = None
    callback_id: str | None = None
    hash: str | None = None
    private_metadata: str | None = None
    team_id: str | None = None
    state: _State | None = None
    blocks: list[dict[str, Any]] | None = None


class _Interaction(_Part):
    type: str
    user: _Ref | None = None
    team: _Ref | None = None
    channel: _Ref | None = None
    container: dict[str, Any] | None = None
    actions: list[_Action] | None = None
    view: _View | None = None
    message: dict[str, Any] | None = None
    previous_message: dict[str, Any] | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    enterprise: _Ref | str | None = None
    authorizations: list[_Ref] | None = None
    event: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    function_data: dict[str, Any] | None = None
    assistant_thread: dict[str, Any] | None = None


class _Event(_Part):
    type: str
    subtype: str | None = None
    user: str | dict[str, Any] | None = None
    channel: str | None = None
    tab: str | None = None
    team: str | None = None
    user_team: str | None = None
    message: dict[str, Any] | None = None
    previous_message: dict[str, Any] | None = None
    item: dict[str, Any] | None = None


class _Callback(_Part):
    type: str
    team_id: str | None = None
    enterprise_id: str | None = None
    event: _Event | None = None
    authorizations: list[_Ref] | None = None


class _Command(_Part):
    command: str
    text: str = ""
    user_id: str | None = None
    team_id: str | None = None
    channel_id: str | None = None


def bolt_request(raw: bytes, query: str, headers: Mapping[str, str]) -> AsyncBoltRequest | None:
    """The request for bolt, or ``None`` when no Slack request looks like this body."""
    try:
        text = raw.decode("utf-8")
        request = AsyncBoltRequest(body=text, query=query, headers=dict(headers))
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, RecursionError):
        # not UTF-8, not JSON, or bolt's parser met a list where Slack sends an object
        return None
    body = request.body
    if not isinstance(body, dict):
        return None
    if not body:
        return request  # nothing to do; bolt answers that nothing handles it
    if _null_objects(body) or _null_objects(body.get("event")) or _ids_not_text(body):
        return None
    if "actions" in body and not (isinstance(body["actions"], list) and body["actions"]):
        return None  # bolt reads the first action of any ``actions`` it finds
    shape = _Command if "command" in body else _Callback if "event" in body else _Interaction
    if body.get("type") in ("event_callback", "app_rate_limited", "url_verification"):
        shape = _Callback
    try:
        shape.model_validate(body)
    except (ValidationError, RecursionError):
        return None
    return request


def _null_objects(part: Any) -> bool:
    """Keys bolt reads as ``.get(key, {})``: present, they must be objects (``null`` is not)."""
    if not isinstance(part, dict):
        return False
    return any(k in part and not isinstance(part[k], dict) for k in _OBJECT_KEYS)


_OBJECT_KEYS = ("event", "view", "function", "context", "tokens")


def _ids_not_text(body: Mapping[str, Any]) -> bool:
    """Ids bolt and our checks read from the top of any body: present, they must be text."""
    return any(k in body and not isinstance(body[k], str | None) for k in _ID_KEYS)


_ID_KEYS = ("team_id", "enterprise_id", "api_app_id", "user_id", "channel_id", "trigger_id", "response_url")


# -- the workspace ------------------------------------------------------------------------


def team_ids(body: Mapping[str, Any]) -> set[str | None]:
    """Every workspace id the body names (``team_id`` of commands and events, ``team.id``)."""
    found: set[str | None] = set()
    if "team_id" in body:
        found.add(_text_or_none(body.get("team_id")))
    team = body.get("team")
    if "team" in body:
        found.add(_text_or_none(team.get("id")) if isinstance(team, dict) else None)
    return found or {None}


def _text_or_none(value: Any) -> str | None:
    """A workspace id is text; anything else (a list, a number) names no workspace of ours."""
    return value if isinstance(value, str) else None


class SameWorkspace(AsyncMiddleware):
    """Drop requests of any workspace but the bot token's (200, nothing done).

    Another workspace's request is validly signed when the app is installed
    there too. We answer 200 with nothing in it: Slack neither retries nor
    shows an error, and we say nothing to a workspace we do not serve.
    """

    def __init__(self, workspace: Callable[[], Awaitable[str | None]]):
        self.workspace = workspace

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        ours = await self.workspace()
        named = team_ids(req.body)
        if ours is not None and named == {ours}:
            return await next()
        log.warning(
            "slack request of another workspace ignored",
            extra={"team": sorted(str(t) for t in named)[:3], "ours": ours},
        )
        return BoltResponse(status=200, body="")


def ok_json(answer: Mapping[str, Any]) -> BoltResponse:
    """A 200 whose JSON Slack reads (an ack with a message or modal errors)."""
    return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})
