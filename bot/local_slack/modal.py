"""The modal's side of a submit: what Slack does with the app's ``response_action``."""

from __future__ import annotations

from typing import Any

from bot.local_slack.blockkit import BlockError, check_blocks
from bot.local_slack.views import View
from bot.local_slack.workspace import Workspace


def respond_to_submit(ws: Workspace, user: str, view: View, answer: dict[str, Any]) -> None:
    """Apply a ``view_submission`` ack: errors, update, push, clear, or (by default) close."""
    action = answer.get("response_action")
    if action == "errors":
        _show_errors(ws, view, answer.get("errors") or {})
    elif action in ("update", "push"):
        new = answer.get("view") or {}
        try:
            body = dict(new, blocks=check_blocks(new.get("blocks") or [], limit=100))
        except BlockError as exc:
            view.errors = {"": f"The app's new view is invalid: {exc}"}
            ws.touch()
            return
        if action == "update":
            ws.replace_view(view, body)
        else:
            ws.open_modal(user, body, push=True)
    elif action == "clear":
        ws.close_modal(user, all_=True)
    else:
        ws.close_modal(user, view.id)


def _show_errors(ws: Workspace, view: View, errors: dict[str, Any]) -> None:
    known = {str(b.get("block_id")) for b in view.body.get("blocks") or []}
    view.errors = {str(k): str(v) for k, v in errors.items() if str(k) in known}
    if len(view.errors) != len(errors):  # Slack refuses errors for unknown blocks
        view.errors[""] = "The app answered with errors for blocks this view lacks."
    ws.touch()
