"""Block Kit on the stand-in's side: checking what the bot sends, reading what a person chose.

Slack refuses malformed blocks with ``invalid_blocks``; the stand-in does the
same (with ``slack_sdk.models.blocks``' own checks), so a bad message fails
here as it would in a real workspace instead of rendering anyway. Block ids
are filled in where the bot left them out, as Slack does, so every element
can be addressed by ``(block_id, action_id)``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, BlockElement

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_LIMIT = 40_000

#: the interactive elements a page can send back, and the key their choice travels under
CHOICE_KEYS = {
    "button": None,
    "overflow": "selected_option",
    "static_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "checkboxes": "selected_options",
    "datepicker": "selected_date",
    "plain_text_input": "value",
}


class BlockError(ValueError):
    """Blocks Slack would refuse; ``str()`` is the reason."""


def check_blocks(blocks: Any, *, limit: int = MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """Validated blocks with block ids filled in, or :class:`BlockError`."""
    if not isinstance(blocks, list):
        raise BlockError("blocks must be a list")
    if len(blocks) > limit:
        raise BlockError(f"no more than {limit} items allowed [json-pointer:/blocks]")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            raise BlockError(f"missing type [json-pointer:/blocks/{i}]")
        parsed = Block.parse(raw)
        if parsed is None:
            raise BlockError(f"unsupported type: {raw['type']} [json-pointer:/blocks/{i}]")
        try:
            parsed.validate_json()
            for element in _elements(raw):
                el = BlockElement.parse(element)
                if el is not None:
                    el.validate_json()
        except SlackObjectFormationError as exc:
            raise BlockError(f"{exc} [json-pointer:/blocks/{i}]") from None
        block = dict(raw)
        block.setdefault("block_id", secrets.token_urlsafe(4))
        for element in _elements(block):  # Slack names what the app left unnamed
            if element.get("type") in CHOICE_KEYS:
                element.setdefault("action_id", secrets.token_urlsafe(4))
        out.append(block)
    return out


def _elements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if isinstance(block.get("accessory"), dict):
        yield block["accessory"]
    if isinstance(block.get("element"), dict):
        yield block["element"]
    if block.get("type") == "actions":
        yield from (e for e in block.get("elements") or [] if isinstance(e, dict))


def find_element(blocks: list[dict[str, Any]] | None, block_id: str, action_id: str) -> dict[str, Any] | None:
    """The interactive element ``action_id`` of block ``block_id``."""
    for block in blocks or []:
        if block.get("block_id") != block_id:
            continue
        for element in _elements(block):
            if element.get("action_id") == action_id:
                return element
    return None


def options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    """Every option an element offers (flattening option groups)."""
    opts = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        opts.extend(group.get("options") or [])
    return opts


def _pick(element: dict[str, Any], value: Any) -> dict[str, Any]:
    for opt in options_of(element):
        if opt.get("value") == value:
            return opt
    raise BlockError(f"'{value}' is not one of the options of {element.get('action_id')}")


def choice(element: dict[str, Any], chosen: Any) -> dict[str, Any]:
    """What a person chose, in Slack's shape: ``{"selected_option": {...}}`` and so on.

    ``chosen`` is what the page sends: an option value, a list of them, a date or
    text. Options are looked up in the element itself, so a page cannot make up
    a choice the bot never offered.
    """
    kind = element.get("type", "")
    key = CHOICE_KEYS.get(kind)
    if kind not in CHOICE_KEYS:
        raise BlockError(f"element type {kind} is not interactive here")
    if key is None:
        return {}
    if key == "selected_option":
        return {key: None if chosen in (None, "") else _pick(element, chosen)}
    if key == "selected_options":
        values = chosen if isinstance(chosen, list) else []
        return {key: [_pick(element, v) for v in values]}
    if key == "selected_date":
        return {key: chosen or None}
    return {key: "" if chosen is None else str(chosen)}


def action_of(element: dict[str, Any], block_id: str, chosen: Any, action_ts: str) -> dict[str, Any]:
    """One entry of ``block_actions.actions``."""
    action: dict[str, Any] = {
        "type": element.get("type"),
        "action_id": element.get("action_id"),
        "block_id": block_id,
        "action_ts": action_ts,
    }
    if element.get("type") == "button":
        action["text"] = element.get("text")
        if "value" in element:
            action["value"] = element["value"]
        if "style" in element:
            action["style"] = element["style"]
        return action
    action.update(choice(element, chosen))
    if "placeholder" in element:
        action["placeholder"] = element["placeholder"]
    return action


def state_values(blocks: list[dict[str, Any]], given: dict[str, Any]) -> dict[str, Any]:
    """``view.state.values`` from the page's ``{block_id: {action_id: chosen}}``.

    Every input block gets an entry (empty when untouched), as Slack sends it.
    """
    values: dict[str, Any] = {}
    for block in blocks:
        if block.get("type") not in ("input", "actions", "section"):
            continue
        bid = str(block.get("block_id"))
        for element in _elements(block):
            kind, aid = element.get("type", ""), element.get("action_id")
            if kind == "button" or kind not in CHOICE_KEYS or not aid:
                continue
            if block.get("type") != "input" and aid not in (given.get(bid) or {}):
                continue  # an actions/section element reports only when it was used
            chosen = (given.get(bid) or {}).get(aid, _initial(element))
            values.setdefault(bid, {})[aid] = {"type": kind, **choice(element, chosen)}
    return values


def _initial(element: dict[str, Any]) -> Any:
    if "initial_option" in element:
        return (element["initial_option"] or {}).get("value")
    if "initial_options" in element:
        return [o.get("value") for o in element["initial_options"] or []]
    return element.get("initial_date", element.get("initial_value"))


def missing_inputs(blocks: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, str]:
    """Required input blocks left empty: ``{block_id: "Please fill out this field."}``."""
    errors: dict[str, str] = {}
    for block in blocks:
        if block.get("type") != "input" or block.get("optional"):
            continue
        bid = str(block.get("block_id"))
        element = block.get("element") or {}
        entry = (values.get(bid) or {}).get(element.get("action_id"), {})
        if not any(entry.get(k) for k in ("value", "selected_option", "selected_options", "selected_date")):
            errors[bid] = "Please fill out this field."
    return errors
