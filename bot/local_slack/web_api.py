"""The Web API subset the bot calls, answered the way Slack answers.

``POST|GET /slack-api/{method}``: JSON, form or query arguments; the bot token
as ``Authorization: Bearer`` (or a ``token`` argument). Answers are HTTP 200
with ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``, with Slack's
error names, so the bot's own error handling is exercised for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.local_slack.blockkit import (
    MESSAGE_BLOCKS,
    TEXT_LIMIT,
    VIEW_BLOCKS,
    BlockError,
    check_blocks,
)
from bot.local_slack.calls import CallLog
from bot.local_slack.faults import Faults
from bot.local_slack.views import MAX_VIEW_STACK, View
from bot.local_slack.workspace import Workspace

Answer = dict[str, Any]
JSON_ARGS = ("blocks", "attachments", "view", "users", "metadata")
#: ``conversations.history`` page size when the caller gives none (Slack's default)
HISTORY_PAGE = 100


class WebApi:
    """The methods, bound to one workspace and one bot token.

    ``faults`` (off by default) make it misbehave; ``calls``, when given, keeps
    every call for a test to read (the sandbox keeps only the page's traffic log).
    """

    def __init__(
        self,
        workspace: Workspace,
        bot_token: str,
        *,
        faults: Faults | None = None,
        calls: CallLog | None = None,
    ):
        self.ws = workspace
        self.token = bot_token
        self.faults = faults or Faults()
        self.calls = calls
        self.methods: dict[str, Callable[[dict[str, Any]], Answer]] = {
            "api.test": lambda args: {"ok": True, "args": args},
            "auth.test": self.auth_test,
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.delete": self.delete,
            "chat.postEphemeral": self.post_ephemeral,
            "views.open": lambda a: self.open_view(a, push=False),
            "views.push": lambda a: self.open_view(a, push=True),
            "views.update": self.update_view,
            "views.publish": self.publish,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroup_users,
            "conversations.info": self.conversation_info,
            "conversations.history": self.history,
        }

    def mount(self, app: web.Application, prefix: str = "/slack-api") -> None:
        """Add ``{prefix}/{method}`` to the application."""
        app.router.add_route("*", prefix + "/{method}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        """One Web API call."""
        method = request.match_info["method"]
        args = await _arguments(request)
        call = (self.calls or CallLog()).record(method, args)
        down = self.faults.refuse_while_down(call)
        if down is not None:
            return down
        auth = request.headers.get("Authorization", "")
        token = (
            auth.removeprefix("Bearer ").strip()
            if auth.startswith("Bearer ")
            else str(args.pop("token", "") or "")
        )
        if token != self.token:
            call.result = {"ok": False, "error": "invalid_auth" if token else "not_authed"}
            response = web.json_response(call.result)
        else:
            response = self.faults.respond(method, call, lambda: self._dispatch(method, args))
        status = "ok" if call.ok else str(call.result.get("error") or call.status)
        self.ws.log("api", _describe(method, args), status)
        return response

    def _dispatch(self, method: str, args: dict[str, Any]) -> Answer:
        if method not in self.methods:
            return {"ok": False, "error": "unknown_method"}
        return self.methods[method](args)

    # -- auth, people, channels -------------------------------------------------------------
    def auth_test(self, _args: dict[str, Any]) -> Answer:
        """Who the token belongs to (bolt asks once, to learn its bot user)."""
        ws = self.ws
        return {
            "ok": True,
            "url": f"https://{ws.team_domain}.slack.invalid/",
            "team": ws.team_name,
            "user": ws.bot.name,
            "team_id": ws.team_id,
            "user_id": ws.bot.id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def users_info(self, args: dict[str, Any]) -> Answer:
        """One member's profile."""
        person = self.ws.person(str(args.get("user", "")))
        if person is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": person.to_slack(self.ws.team_id)}

    def usergroup_users(self, args: dict[str, Any]) -> Answer:
        """The members of a user group (the allow-list's group)."""
        group = self.ws.usergroups.get(str(args.get("usergroup", "")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group[1])}

    def conversation_info(self, args: dict[str, Any]) -> Answer:
        """A channel's name and flags."""
        channel = str(args.get("channel", ""))
        if channel not in self.ws.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": self.ws.channels[channel],
                "is_channel": True,
                "is_member": True,
                "is_archived": False,
            },
        }

    def history(self, args: dict[str, Any]) -> Answer:
        """A channel's top-level messages, newest first, after ``oldest``, paged by ``cursor``.

        ``metadata`` is shown only with ``include_all_metadata`` (as Slack does).
        """
        channel = str(args.get("channel", ""))
        if channel not in self.ws.channels:
            return {"ok": False, "error": "channel_not_found"}
        try:
            oldest = float(args.get("oldest") or 0)
            start = int(args.get("cursor") or 0)
            limit = max(1, min(999, int(args.get("limit") or HISTORY_PAGE)))
        except (TypeError, ValueError):
            return {"ok": False, "error": "invalid_arguments"}
        metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        top = [
            m
            for m in reversed(self.ws.messages[channel].values())
            if not m.thread_ts and float(m.ts) > oldest
        ]
        page = []
        for m in top[start : start + limit]:
            shown = m.to_slack()
            if metadata and m.metadata:
                shown["metadata"] = m.metadata
            page.append(shown)
        more = start + limit < len(top)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    # -- messages -------------------------------------------------------------------------
    def _content(
        self, args: dict[str, Any], *, need: bool = True
    ) -> tuple[str, list[dict[str, Any]] | None, Answer | None]:
        text = str(args.get("text") or "")
        blocks = args.get("blocks")
        if len(text) > TEXT_LIMIT:
            return text, None, {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            try:
                blocks = check_blocks(blocks, limit=MESSAGE_BLOCKS)
            except BlockError as exc:
                return text, None, {"ok": False, "error": "invalid_blocks", "errors": [str(exc)]}
        if need and not text and not blocks and not args.get("attachments"):
            return text, None, {"ok": False, "error": "no_text"}
        return text, blocks, None

    def post_message(self, args: dict[str, Any]) -> Answer:
        """Post to a channel, or into a thread with ``thread_ts``."""
        channel = str(args.get("channel", ""))
        if channel not in self.ws.channels:
            return {"ok": False, "error": "channel_not_found"}
        text, blocks, error = self._content(args)
        if error:
            return error
        thread_ts = args.get("thread_ts") or None
        if thread_ts and self.ws.message(channel, str(thread_ts)) is None:
            return {"ok": False, "error": "thread_not_found"}
        msg = self.ws.post(
            channel,
            self.ws.bot.id,
            text,
            blocks=blocks,
            attachments=args.get("attachments"),
            thread_ts=str(thread_ts) if thread_ts else None,
            metadata=_metadata(args.get("metadata")),
        )
        return {"ok": True, "channel": channel, "ts": msg.ts, "message": msg.to_slack()}

    def update(self, args: dict[str, Any]) -> Answer:
        """Rewrite one of the bot's messages in place."""
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        if channel not in self.ws.channels:
            return {"ok": False, "error": "channel_not_found"}
        msg = self.ws.message(channel, ts)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.user != self.ws.bot.id:
            return {"ok": False, "error": "cant_update_message"}
        text, blocks, error = self._content(args, need=False)
        if error:
            return error
        # Slack keeps what an update leaves out.
        self.ws.update(
            msg,
            text if "text" in args else msg.text,
            blocks if "blocks" in args else msg.blocks,
            args.get("attachments"),
        )
        return {"ok": True, "channel": channel, "ts": ts, "text": msg.text, "message": msg.to_slack()}

    def delete(self, args: dict[str, Any]) -> Answer:
        """Delete one of the bot's messages."""
        channel, ts = str(args.get("channel", "")), str(args.get("ts", ""))
        msg = self.ws.message(channel, ts)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.user != self.ws.bot.id:
            return {"ok": False, "error": "cant_delete_message"}
        self.ws.delete(msg)
        return {"ok": True, "channel": channel, "ts": ts}

    def post_ephemeral(self, args: dict[str, Any]) -> Answer:
        """A message only ``user`` sees."""
        channel, user = str(args.get("channel", "")), str(args.get("user", ""))
        if channel not in self.ws.channels and channel != self.ws.dm_channel:
            return {"ok": False, "error": "channel_not_found"}
        if self.ws.person(user) is None:
            return {"ok": False, "error": "user_not_in_channel"}
        text, blocks, error = self._content(args)
        if error:
            return error
        eph = self.ws.post_ephemeral(
            user, channel, text, blocks, thread_ts=str(args["thread_ts"]) if args.get("thread_ts") else None
        )
        return {"ok": True, "message_ts": eph.ts}

    # -- views -----------------------------------------------------------------------------
    def _view_body(self, args: dict[str, Any], kind: str) -> tuple[dict[str, Any], Answer | None]:
        view = args.get("view")
        if not isinstance(view, dict) or view.get("type") != kind:
            return {}, {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [f"view must be a {kind} view"]},
            }
        if kind == "modal" and not (view.get("title") or {}).get("text"):
            return {}, {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["a modal needs a title"]},
            }
        try:
            body = dict(view, blocks=check_blocks(view.get("blocks") or [], limit=VIEW_BLOCKS))
        except BlockError as exc:
            return {}, {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": [str(exc)]},
            }
        return body, None

    def _view_answer(self, view: View) -> Answer:
        return {"ok": True, "view": view.to_slack(self.ws.team_id, self.ws.app_id, self.ws.bot_id)}

    def open_view(self, args: dict[str, Any], *, push: bool) -> Answer:
        """Open (or push) a modal; needs a trigger_id issued in the last three seconds."""
        user, error = self.ws.use_trigger(args.get("trigger_id"))
        if error:
            return {"ok": False, "error": error}
        assert user is not None
        if push and len(self.ws.modals.get(user, [])) >= MAX_VIEW_STACK:
            return {"ok": False, "error": "push_limit_reached"}
        if push and not self.ws.modals.get(user):
            return {"ok": False, "error": "not_found"}
        body, error_answer = self._view_body(args, "modal")
        if error_answer:
            return error_answer
        return self._view_answer(self.ws.open_modal(user, body, push=push))

    def update_view(self, args: dict[str, Any]) -> Answer:
        """Replace an open view (by ``view_id`` or ``external_id``; ``hash`` guards races)."""
        view = self.ws.find_view(args.get("view_id"), args.get("external_id"))
        if view is None:
            return {"ok": False, "error": "not_found"}
        if args.get("hash") and args["hash"] != view.hash:
            return {"ok": False, "error": "hash_conflict"}
        body, error = self._view_body(args, view.type)
        if error:
            return error
        return self._view_answer(self.ws.replace_view(view, body))

    def publish(self, args: dict[str, Any]) -> Answer:
        """Set a user's App Home."""
        user = str(args.get("user_id", ""))
        if self.ws.person(user) is None:
            return {"ok": False, "error": "user_not_found"}
        home = self.ws.homes.get(user)
        if home is not None and args.get("hash") and args["hash"] != home.hash:
            return {"ok": False, "error": "hash_conflict"}
        body, error = self._view_body(args, "home")
        if error:
            return error
        return self._view_answer(self.ws.publish_home(user, body))


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                body = {}
            if isinstance(body, dict):
                args.update(body)
        else:
            args.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    for key in JSON_ARGS:  # form-encoded calls carry these as JSON text
        if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
            try:
                args[key] = json.loads(args[key])
            except json.JSONDecodeError:
                pass
    return args


def _metadata(raw: Any) -> dict[str, Any] | None:
    """Message metadata as Slack keeps it: an ``event_type`` and an ``event_payload`` object."""
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str):
        return None
    payload = raw.get("event_payload")
    return {"event_type": raw["event_type"], "event_payload": payload if isinstance(payload, dict) else {}}


def _describe(method: str, args: dict[str, Any]) -> str:
    where = args.get("channel") or args.get("user_id") or args.get("user") or ""
    extra = " (thread)" if args.get("thread_ts") else ""
    return f"{method} {where}{extra}".strip()
