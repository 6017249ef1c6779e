"""Pure builders for slash-command answers: overview state -> Block Kit.

No I/O: the listeners load the overview (sync.overview) and hand it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, DividerBlock, HeaderBlock, PlainTextObject

from bot.actions import ActionId, GroupRef, HistoryRef, PageRef
from bot.block_kit import SlackBody, button, context, escape, finish, quote, section, when
from sync.mappings import MappingSource
from sync.overview import AttentionGroup, BookedNotSent, CompanyQueue, IntegrationStatus

#: groups per page of ``attention`` (3 blocks each keeps a page far below 50 blocks)
GROUPS_PER_PAGE = 10


def _count_line(st: IntegrationStatus) -> str:
    parts = [
        f"synced today *{st.synced_today}*",
        f"waiting *{st.counts.get('waiting', 0)}*",
        f"queued *{st.counts.get('pending', 0) + st.counts.get('retrying', 0)}*",
        f"in flight *{st.counts.get('in_flight', 0)}*",
        f"failed *{st.counts.get('failed', 0)}*",
        f"booked *{st.counts.get('booked', 0)}*",
    ]
    return " · ".join(parts)


def integration_head(st: IntegrationStatus) -> str:
    """An integration's name, kind, paused, open groups and counts (status and the App Home)."""
    paused = " :double_vertical_bar: *paused*" if st.paused else ""
    groups = (
        f" · {st.open_groups} open error group{'s' if st.open_groups != 1 else ''}" if st.open_groups else ""
    )
    return f"*{escape(st.name)}* ({escape(st.kind)}){paused}{groups}\n{_count_line(st)}"


def status_answer(
    statuses: Sequence[IntegrationStatus], mappings: dict[str, list[tuple[str, str, MappingSource]]]
) -> SlackBody:
    """``/ledger status``: per integration counts, paused, open groups, where mappings come from."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Ledger status"))]
    for st in statuses[:20]:
        blocks.append(section(integration_head(st)))
        stored = [(w, src, m) for w, src, m in mappings.get(st.name, []) if m.origin == "database"]
        if stored:
            lines = ", ".join(f"{escape(w)} “{escape(src)}” → {m.number}" for w, src, m in stored[:8])
            more = f" and {len(stored) - 8} more" if len(stored) > 8 else ""
            blocks.append(context(f"Mappings set in Slack (win over ledgerops.toml): {lines}{more}"))
    if not statuses:
        blocks.append(section("No integrations are configured."))
    text = "; ".join(f"{s.name}: {s.counts.get('failed', 0)} failed" for s in statuses) or "No integrations"
    return finish(f"Ledger status — {text}", blocks)


def attention_answer(
    groups: Sequence[AttentionGroup],
    page: int = 1,
    can_change: bool = True,
    booked: Sequence[BookedNotSent] = (),
) -> SlackBody:
    """``/ledger attention``: what needs a person, grouped by error, each with its buttons;
    then booked vouchers whose change was not sent (on the first page)."""
    if not groups and not booked:
        return finish(
            "Nothing needs attention.", [section(":white_check_mark: Nothing needs a person right now.")]
        )
    if not groups:
        header = HeaderBlock(
            text=PlainTextObject(text=f"Needs attention: {len(booked)} booked, change not sent")
        )
        return finish(f"{len(booked)} booked postings need attention", [header, *booked_blocks(booked)])
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    page = min(max(page, 1), pages)
    shown = groups[(page - 1) * GROUPS_PER_PAGE : page * GROUPS_PER_PAGE]
    total = sum(g.failed for g in groups)
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=f"Needs attention: {total} posting{'s' if total != 1 else ''}"))
    ]
    for g in shown:
        docs = "\n".join(f"• {escape(seen)}" for _, _, seen in g.documents)
        more = f"\n…and {g.failed - len(g.documents)} more" if g.failed > len(g.documents) else ""
        blocks.append(
            section(
                f"*{g.failed} posting{'s' if g.failed != 1 else ''}* in *{escape(g.integration)}*: "
                f"`{escape(g.code)}` (group {g.group_id})\n{quote(g.title, 1500)}\n{docs}{more}"
            )
        )
        if can_change:
            blocks.append(
                ActionsBlock(
                    elements=[
                        button(
                            f"Resync all {g.failed}",
                            ActionId.RESYNC_GROUP,
                            GroupRef(group=g.group_id),
                            style="primary",
                        )
                    ]
                )
            )
        blocks.append(context(f"first seen {when(g.first_seen)} · last seen {when(g.last_seen)}"))
    if page == 1:
        blocks.extend(booked_blocks(booked))
    blocks.extend(_pager("attention", page, pages))
    return finish(f"{total + len(booked)} postings need attention", blocks)


#: booked postings listed in full in ``attention`` (the rest counted)
BOOKED_SHOWN = 10


def booked_blocks(booked: Sequence[BookedNotSent]) -> list[Block]:
    """One section per booked posting whose change was not sent: what, which voucher, the change."""
    if not booked:
        return []
    blocks: list[Block] = [
        section(f"*Booked, change not sent* — {len(booked)} posting{'s' if len(booked) != 1 else ''}")
    ]
    for b in booked[:BOOKED_SHOWN]:
        what = "\n".join(f"• {escape(line)}" for line in b.change[:6]) or quote(b.reason, 500)
        blocks.append(
            section(
                f"*{escape(b.summary)}* · {escape(b.posting_kind.replace('_', ' '))} posting · "
                f"voucher *{escape(b.voucher)}* in *{escape(b.integration)}*\n{what}"
            )
        )
    if len(booked) > BOOKED_SHOWN:
        blocks.append(
            context(f"…and {len(booked) - BOOKED_SHOWN} more: correct them in the ledger, then Mark handled.")
        )
    else:
        blocks.append(context("Correct each in the ledger, then press Mark handled on its message."))
    return blocks


def _pager(command: str, page: int, pages: int) -> list[Block]:
    if pages <= 1:
        return []
    nav = []
    if page > 1:
        nav.append(
            button(
                "Previous",
                ActionId.PAGE,
                PageRef(page=page - 1, cmd=command),
            )
        )
    if page < pages:
        nav.append(
            button(
                "Next",
                ActionId.PAGE,
                PageRef(page=page + 1, cmd=command),
            )
        )
    return [context(f"Page {page} of {pages}"), ActionsBlock(elements=nav)]


def queue_answer(queues: Sequence[CompanyQueue], jobs: Sequence[object], now: datetime) -> SlackBody:
    """``/ledger queue``: what waits per company and since when; what each job did and does next."""
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text="Queue"))]
    if not queues:
        blocks.append(section("Nothing is queued."))
    for q in queues[:30]:
        line = f"*{escape(q.company)}*: {q.queued} queued, {q.in_flight} in flight, {q.retrying} retrying"
        if q.queued_since:
            line += f" · queued since {when(q.queued_since)}"
        if q.next_retry_at:
            line += f" · next retry {when(q.next_retry_at)}"
        if q.resting_until and q.resting_until > now:
            line += f" · the ledger asked us to wait until {when(q.resting_until)}"
        blocks.append(section(line))
    if jobs:
        blocks.append(DividerBlock())
        lines = []
        for job in jobs:
            last = f"last {when(job.last_run)}: {escape(job.last_result)}" if job.last_run else "not run yet"  # type: ignore[attr-defined]
            nxt = f" · next {when(job.next_run)}" if job.next_run else ""  # type: ignore[attr-defined]
            lines.append(f"• *{escape(job.description)}* — {last}{nxt}")  # type: ignore[attr-defined]
        blocks.append(section("*Scheduled jobs*\n" + "\n".join(lines)))
    return finish("Queue", blocks)


def help_answer(
    command: str, usage: dict[str, str], topic: str | None = None, what: dict[str, str] | None = None
) -> SlackBody:
    """``/ledger help``: every subcommand and, on the next line, what it does."""
    what = what or {}
    lines = [
        f"`{command} {line}`" + (f" — {what[key]}" if key in what else "")
        for key, line in usage.items()
        if topic in (None, key)
    ]
    return finish(
        f"{command} help",
        [
            section("*What you can ask*\n" + "\n".join(lines)),
            context("Changing commands need permission; reading ones are open to the channel."),
        ],
    )


def usage_answer(command: str, problem: str, usage: str) -> SlackBody:
    """An input we could not read: what was wrong and how to write it. Nothing changed."""
    lines = "\n".join(f"`{command} {u.strip()}`" for u in usage.split(";"))
    # ``problem`` quotes what the person typed (``<!here>`` …): escaped in the fallback too
    said = sentence(escape(problem))
    return finish(
        f"{said} Usage: {usage}",
        [section(f":warning: {said} Nothing was changed."), section(f"*Usage*\n{lines}")],
    )


def sentence(text: str) -> str:
    """``text`` ending in one full stop: "which integration?" stays as it is, not "?."."""
    text = text.rstrip()
    return text if not text or text[-1] in ".?!" else text + "."


def note(text: str) -> SlackBody:
    """A one-line answer (the text is ours or already escaped)."""
    return finish(text, [section(text)])


def history_confirmation(integration: str, since: str, count: int) -> SlackBody:
    """Ask before sending history: how many postings it is."""
    text = (
        f"{count} posting{'s' if count != 1 else ''} of *{integration}* dated from {since} "
        "wait for the history start. Transfer them now?"
    )
    return finish(
        text,
        [
            section(text),
            ActionsBlock(
                elements=[
                    button(
                        f"Transfer {count}",
                        ActionId.CONFIRM_HISTORY,
                        HistoryRef(integration=integration, since=since),
                        style="primary",
                    )
                ]
            ),
        ],
    )


def no_such_document(command: str, ref: str, suggestions: Sequence[str], usage: str, forms: str) -> SlackBody:
    """A reference that names no document: the near misses, and what may be typed."""
    guess = " or ".join(f"`{escape(n)}`" for n in suggestions)
    problem = f"No document '{ref}' is known"
    lines = [f":warning: {escape(problem)}." + (f" Did you mean {guess}?" if guess else "")]
    lines.append(f"Name a document by {escape(forms)}.")
    text = f"{escape(problem)}." + (
        f" Did you mean {', '.join(escape(n) for n in suggestions)}?" if guess else ""
    )
    usage_lines = "\n".join(f"`{command} {u.strip()}`" for u in usage.split(";"))
    return finish(text, [section("\n".join(lines)), section(f"*Usage*\n{usage_lines}")])


def document_choice(command: str, verb: str, ref: str, choices: Sequence[tuple[str, str]]) -> SlackBody:
    """Several documents match: each with what it is and the exact form that names it."""
    head = f"{len(choices)} documents match '{escape(ref)}'. Which one?"
    lines = [f"• {escape(line)} — `{command} {verb} {escape(exact)}`" for line, exact in choices[:10]]
    return finish(head, [section(f":mag: {head}\n" + "\n".join(lines)), context("Nothing was changed.")])
