"""Pure builders for the operations messages: outage, daily digest, monthly quota reset.

Same rules as ``bot/block_kit.py``: built with slack_sdk's block models, text from
ledgers escaped and cut, times shown in each reader's own zone (``when``) with a
UTC fallback in the notification text.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block, HeaderBlock, PlainTextObject

from bot.block_kit import SECTION_TEXT, SlackBody, context, escape, finish, quote, section, when
from bot.ops.facts import Digest, OutageNotice, QuotaNotice, system_name

#: integrations listed one by one in the digest (the rest are summed up in a line)
DIGEST_INTEGRATIONS = 20
DIGEST_GROUPS = 10


def duration(seconds: float) -> str:
    """``45 s``, ``10 min``, ``1 h 30 min``, ``2 d 3 h``: how long, the way people say it."""
    s = max(0, round(seconds))
    if s < 90:
        return f"{s} s"
    minutes = round(s / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def clock_time(ts: datetime) -> str:
    """``10:02 UTC`` for the plain notification text (blocks use :func:`when`)."""
    return ts.strftime("%H:%M UTC")


def items(n: int) -> str:
    return f"{n} item{'' if n == 1 else 's'}"


def capital(text: str) -> str:
    """A system's name starting a sentence: "The sandbox ledger", but "e-conomic" as it is."""
    return "The" + text[3:] if text.startswith("the ") else text


# -- outage -----------------------------------------------------------------------------------


def outage_message(n: OutageNotice) -> SlackBody:
    """One message per outage: while it lasts, and updated in place when the ledger is back."""
    system, integ = escape(system_name(n.kind)), escape(n.integration)
    every = f", retrying every {duration(n.retry_seconds)}" if n.retry_seconds else ""
    blocks: list[Block] = []
    if n.recovered_at is None:
        blocks.append(
            section(
                f":rotating_light: *{capital(system)} is unreachable since {when(n.since)}* — "
                f"*{items(n.waiting)}* of *{integ}* waiting{every}."
            )
        )
        nxt = f"Next try {when(n.next_try_at)}. " if n.next_try_at else ""
        blocks.append(
            section(
                f"{nxt}Nothing needs doing: what waits is sent on its own, in order, once "
                f"{system} answers again. Items are not reported one by one meanwhile."
            )
        )
        text = (
            f"{capital(system_name(n.kind))} is unreachable since {clock_time(n.since)}, "
            f"{items(n.waiting)} waiting{every} ({n.integration})"
        )
    else:
        down_for = duration((n.recovered_at - n.since).total_seconds())
        blocks.append(
            section(
                f":white_check_mark: *{capital(system)} is reachable again* for *{integ}* since "
                f"{when(n.recovered_at)}; it was unreachable from {when(n.since)} ({down_for})."
            )
        )
        if n.waiting:
            blocks.append(section(_went_through(n)))
        text = (
            f"{capital(system_name(n.kind))} reachable again ({n.integration}); unreachable from "
            f"{clock_time(n.since)} for {down_for}"
        )
    if n.last_error:
        blocks.append(section(f"*Last error:*\n{quote(n.last_error, SECTION_TEXT - 40)}"))
    code = f"error `{escape(n.error_code)}`" if n.error_code else ""
    last = f"last failure {when(n.last_seen)}" if n.last_seen else ""
    blocks.append(context(f"*{integ}*", code, last))
    return finish(escape(text), blocks)


def _went_through(n: OutageNotice) -> str:
    """What became of the items that waited: being sent, then how many went through."""
    counted = f"{n.sent} sent, {n.failed} failed"
    if n.still_waiting:
        return f"The {items(n.waiting)} that waited are being sent now: {counted} so far."
    return f"The {items(n.waiting)} that waited went through: {counted}."


# -- daily digest -----------------------------------------------------------------------------


def digest_message(d: Digest) -> SlackBody:
    """Synced / failed / waiting per integration, open error groups, paused integrations."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Daily digest · {d.day}")),
        context(f"Since {when(d.since)}"),
    ]
    for i in d.integrations[:DIGEST_INTEGRATIONS]:
        paused = " :double_vertical_bar: *paused*" if i.paused else ""
        blocks.append(
            section(
                f"*{escape(i.name)}* ({escape(system_name(i.kind))}){paused}\n"
                f":white_check_mark: {i.synced} synced · :red_circle: {i.failed} failed · "
                f":hourglass_flowing_sand: {i.waiting} waiting"
            )
        )
    rest = d.integrations[DIGEST_INTEGRATIONS:]
    if rest:
        blocks.append(
            section(
                f"…and {len(rest)} more integrations: {sum(i.synced for i in rest)} synced, "
                f"{sum(i.failed for i in rest)} failed, {sum(i.waiting for i in rest)} waiting."
            )
        )
    if d.groups:
        lines = [
            f"• *{g.failing} {escape(g.noun)}:* {escape(g.title)} ({escape(g.integration)})"
            for g in d.groups[:DIGEST_GROUPS]
        ]
        if d.more_groups:
            lines.append(f"…and {d.more_groups} more open error groups")
        blocks.append(section("*Needs a person*\n" + "\n".join(lines)))
    else:
        blocks.append(section(":tada: Nothing needs a person."))
    if d.paused:
        names = ", ".join(f"*{escape(n)}*" for n in d.paused)
        blocks.append(
            section(
                f":double_vertical_bar: Paused: {names}. Nothing is sent until "
                "it is resumed; nothing queued is lost."
            )
        )
    t = d.totals
    text = (
        f"Daily digest {d.day}: {t.get('synced', 0)} synced, {t.get('failed', 0)} failed, "
        f"{t.get('waiting', 0)} waiting"
    )
    if d.paused:
        text += f"; paused: {', '.join(d.paused)}"
    return finish(escape(text), blocks)


# -- monthly quota reset ----------------------------------------------------------------------


def quota_message(q: QuotaNotice) -> SlackBody:
    """The channel is told how many postings the monthly quota reset let go."""
    what = (
        "1 posting held back by the quota is"
        if q.resumed == 1
        else f"{q.resumed} postings held back by the quota are"
    )
    return finish(
        f"Monthly booking quota reset ({q.month}): {what} being sent now.",
        [
            section(
                f":arrows_counterclockwise: *Monthly booking quota reset* ({q.month}): {what} being sent now."
            )
        ],
    )
