"""The slash command (``/ledger`` by default): parse -> call sync -> answer privately.

Reading commands answer in the acknowledgement itself (one round trip, well
inside Slack's three seconds). Changing commands acknowledge at once with a
short note, then work in a task and replace that note with the outcome
through the ``response_url``. The allow-list gate (``handlers/gate.py``)
refused changing commands of people outside it before they got here.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import ActionId, ActivityPageRef, HistoryRef, PageRef
from bot.block_kit import SlackBody
from bot.commands.activity import activity_answer
from bot.commands.answers import (
    attention_answer,
    document_choice,
    help_answer,
    history_confirmation,
    no_such_document,
    note,
    queue_answer,
    status_answer,
    usage_answer,
)
from bot.ops.team import announce
from bot.postings.log_blocks import LOG_PAGE_SIZE, log_page, outcome_note, resync_buttons
from bot.postings.notices import load_document_notices, load_log
from bot.runtime import Runtime
from bot.slack import SlackBot, urgent
from handlers import command_parser as cp
from handlers.bulk import BulkResyncModal
from handlers.buttons import Press, listen
from storage.models import Document
from sync.admin import history_count, map_account, pause_integration, transfer_history
from sync.engine import UnknownIntegration
from sync.log import activity_page
from sync.lookup import exact_form, find_document, summary
from sync.overview import (
    booked_not_sent,
    company_queues,
    integration_status,
    needs_attention,
)
from sync.resync import resync_document

log = logging.getLogger(__name__)

#: the context key of the parsed changing command, from the ack to the lazy listeners
COMMAND = "ledgerops_command"


def ephemeral(body: SlackBody) -> dict[str, Any]:
    return {"response_type": "ephemeral", "text": body.text, "blocks": body.blocks}


class SlashCommands:
    """The listener of the slash command and of the buttons its answers carry."""

    def __init__(self, runtime: Runtime, bot: SlackBot):
        self.runtime = runtime
        self.engine = runtime.engine
        self.db = runtime.db
        self.bot = bot
        self.name = runtime.config.slack.command
        self.modal = BulkResyncModal(runtime, bot)

    def register(self, app: AsyncApp) -> None:
        app.command(self.name)(ack=self.on_command, lazy=[urgent(self.open_bulk_later), self.change_later])
        listen(app, ActionId.PAGE, self.page, self.first_page)
        listen(app, ActionId.ACTIVITY_PAGE, self.activity_older, self.activity_first)
        listen(app, ActionId.CONFIRM_HISTORY, self.confirm_history, self.stale_history)
        self.modal.register(app)

    # -- the command ---------------------------------------------------------------------
    async def on_command(self, ack: Any, body: dict[str, Any], context: dict[str, Any]) -> None:
        """The acknowledgement: a reading command's answer, or a note; the work follows lazily."""
        parsed = cp.parse(body.get("text", ""))
        if isinstance(parsed, cp.Usage):
            await ack(**ephemeral(usage_answer(self.name, parsed.problem, parsed.usage)))
            return
        if not isinstance(parsed, cp.CHANGING):
            await ack(**ephemeral(await self.read(parsed)))
            return
        context[COMMAND] = parsed  # for the lazy listeners (bolt copies the context to them)
        if isinstance(parsed, cp.ResyncFailed):
            await ack()  # the modal opens right after (open_bulk_later is urgent)
            return
        await ack(**ephemeral(note(":hourglass_flowing_sand: Working on it…")))

    async def open_bulk_later(self, body: dict[str, Any], context: dict[str, Any]) -> None:
        """The bulk modal must open within 3 s of the command (its trigger_id expires)."""
        cmd = context.get(COMMAND)
        if isinstance(cmd, cp.ResyncFailed):
            await self.open_bulk(cmd, body.get("user_id", ""), body)

    async def change_later(self, body: dict[str, Any], context: dict[str, Any], respond: Any) -> None:
        """A changing command's work, in its turn; the outcome replaces "Working on it…"."""
        cmd = context.get(COMMAND)
        if isinstance(cmd, cp.CHANGING) and not isinstance(cmd, cp.ResyncFailed):
            await self.change(cmd, body.get("user_id", ""), respond)

    async def read(self, cmd: Any) -> SlackBody:
        """Answers to the reading commands (open to everyone in the channel)."""
        now = self.engine.clock()
        async with self.db.sessions() as s:
            if isinstance(cmd, cp.Status):
                statuses = await integration_status(s, now)
                book = self.engine.mapping_book
                return status_answer(
                    statuses, {st.name: book.listing(st.name) for st in statuses if st.name in book.configs}
                )
            if isinstance(cmd, cp.Attention):
                booked = await booked_not_sent(s, limit=200)
                return attention_answer(await needs_attention(s, limit=200), booked=booked)
            if isinstance(cmd, cp.Queue):
                jobs = self.runtime.scheduler.overview() if self.runtime.scheduler else []
                return queue_answer(await company_queues(s, now), jobs, now)
            if isinstance(cmd, cp.Log):
                return await self.log(s, cmd)
            if isinstance(cmd, cp.ActivityLog):
                since = _since(cmd.since, now)
                entries, before = await activity_page(s, since, None)
                return activity_answer(entries, since.isoformat() if since else "", 1, before)
        return help_answer(self.name, cp.USAGE, getattr(cmd, "topic", None), cp.WHAT)

    async def log(self, s: Any, cmd: cp.Log) -> SlackBody:
        doc = await self.one_document(s, cmd.document, "log")
        if isinstance(doc, SlackBody):
            return doc
        loaded = await load_log(s, doc.id, doc.integration_id)
        if loaded is None:
            return note("That document no longer exists.")
        facts, integration, integration_id, entries = loaded
        notices = await load_document_notices(s, doc.id, integration_id)
        page = cmd.page - 1
        start = page * LOG_PAGE_SIZE
        return log_page(
            facts,
            integration,
            integration_id,
            entries[start : start + LOG_PAGE_SIZE],
            page,
            has_more=len(entries) > start + LOG_PAGE_SIZE,
            resync=resync_buttons(notices),
        )

    async def one_document(self, s: Any, ref: str, usage_key: str) -> Document | SlackBody:
        """The one document ``ref`` names, or an answer: did you mean …, or which one."""
        found = await find_document(s, ref)
        docs = found.documents
        if not docs:
            return no_such_document(self.name, ref, found.suggestions, cp.USAGE[usage_key], cp.DOCUMENT_FORMS)
        if len(docs) > 1:
            return document_choice(self.name, usage_key, ref, [(summary(d), exact_form(d)) for d in docs])
        return docs[0]

    # -- changing commands -----------------------------------------------------------------
    async def change(self, cmd: Any, user: str, respond: Any) -> None:
        async def tell(body: SlackBody) -> None:
            await respond(
                response_type="ephemeral", replace_original=True, text=body.text, blocks=body.blocks
            )

        try:
            await tell(await self.run_change(cmd, user))
        except UnknownIntegration as exc:
            await tell(usage_answer(self.name, str(exc).rstrip("."), _usage_of(cmd)))

    async def run_change(self, cmd: Any, user: str) -> SlackBody:
        engine = self.engine
        if isinstance(cmd, cp.Pause | cp.Resume):
            change = await pause_integration(engine, cmd.integration, isinstance(cmd, cp.Pause), user)
            await announce(self.runtime, change.integration, change.activity_id)
            return note(change.said)
        if isinstance(cmd, cp.Map):
            integration = cmd.integration or self.only_integration()
            if integration is None:
                return usage_answer(self.name, "Which integration? Several are configured", cp.USAGE["map"])
            requeued, row = await map_account(engine, integration, cmd.what, cmd.source, cmd.number, user)
            await announce(self.runtime, integration, row)
            return note(
                f"Mapped {cmd.what} “{_esc(cmd.source)}” → {cmd.number} in "
                f"*{integration}*; {len(requeued)} failed posting"
                f"{'s' if len(requeued) != 1 else ''} queued again."
            )
        if isinstance(cmd, cp.History):
            count = await history_count(engine, cmd.integration, cmd.since)
            if not count:
                return note(
                    f"Nothing waits for the history start in *{cmd.integration}* from "
                    f"{cmd.since.isoformat()}."
                )
            return history_confirmation(cmd.integration, cmd.since.isoformat(), count)
        async with self.db.sessions() as s:
            doc = await self.one_document(
                s, cmd.document, "restart" if isinstance(cmd, cp.Restart) else "resync"
            )
        if isinstance(doc, SlackBody):
            return doc
        kinds = ["all"] if isinstance(cmd, cp.Restart) else list(cmd.postings)
        outcomes = await resync_document(engine, doc.source, doc.kind, doc.external_id, kinds, user)
        return outcome_note([o.message for o in outcomes])

    def only_integration(self) -> str | None:
        names = list(self.engine.integrations)
        return names[0] if len(names) == 1 else None

    async def open_bulk(self, cmd: cp.ResyncFailed, user: str, body: dict[str, Any]) -> None:
        async def tell(answer: SlackBody) -> None:
            await self.bot.client.chat_postEphemeral(
                channel=body.get("channel_id", ""), user=user, text=answer.text, blocks=answer.blocks
            )

        if cmd.integration and cmd.integration not in self.engine.integrations:
            await tell(
                usage_answer(
                    self.name,
                    str(UnknownIntegration(cmd.integration, sorted(self.engine.integrations))).rstrip("."),
                    cp.USAGE["resync failed"],
                )
            )
            return
        await self.modal.open(body.get("trigger_id", ""), cmd, user, body.get("channel_id", ""))

    # -- buttons on the answers ------------------------------------------------------------
    async def page(self, press: Press, ref: PageRef) -> None:
        """Another page of the attention answer, in place of the one shown."""
        async with self.db.sessions() as s:
            booked = await booked_not_sent(s, limit=200)
            answer = attention_answer(await needs_attention(s, limit=200), ref.page, booked=booked)
        await press.respond(
            response_type="ephemeral", replace_original=True, text=answer.text, blocks=answer.blocks
        )

    async def first_page(self, press: Press, _exc: ValueError) -> None:
        """A page we cannot read: the first one."""
        await self.page(press, PageRef(page=1, cmd="attention"))

    async def activity_older(self, press: Press, ref: ActivityPageRef) -> None:
        """Older entries of the activity log, in place of the page shown."""
        try:
            since = datetime.fromisoformat(ref.since) if ref.since else None
        except ValueError:
            since = None
        async with self.db.sessions() as s:
            entries, before = await activity_page(s, since, ref.before)
        await _replace(press, activity_answer(entries, ref.since if since else "", ref.page, before))

    async def activity_first(self, press: Press, _exc: ValueError) -> None:
        """A page we cannot read: the newest entries."""
        async with self.db.sessions() as s:
            entries, before = await activity_page(s, None, None)
        await _replace(press, activity_answer(entries, "", 1, before))

    async def confirm_history(self, press: Press, ref: HistoryRef) -> None:
        """Send the history the person confirmed (the gate let them through)."""
        cmd = cp.parse(f"history {ref.integration} --since {ref.since}")
        if not isinstance(cmd, cp.History):
            await self.stale_history(press, ValueError("not a history command"))
            return
        queued = await transfer_history(self.engine, cmd.integration, cmd.since, press.user)
        await _replace(
            press,
            note(
                f"{queued} posting{'s' if queued != 1 else ''} of *{cmd.integration}* "
                f"dated from {cmd.since.isoformat()} queued for transfer."
            ),
        )

    async def stale_history(self, press: Press, _exc: ValueError) -> None:
        """A Transfer button we cannot read: nothing is sent."""
        await _replace(press, note("That button no longer works. Nothing was changed."))


async def _replace(press: Press, answer: SlackBody) -> None:
    await press.respond(
        response_type="ephemeral", replace_original=True, text=answer.text, blocks=answer.blocks
    )


def _usage_of(cmd: Any) -> str:
    key = {cp.Pause: "pause", cp.Resume: "resume", cp.History: "history", cp.Map: "map"}
    return cp.USAGE.get(key.get(type(cmd), "help"), cp.USAGE["help"])


def _since(since: date | timedelta | None, now: datetime) -> datetime | None:
    """``--since``: a date is its midnight (UTC), a span counts back from now."""
    if isinstance(since, timedelta):
        return now - since
    if isinstance(since, date):
        return datetime.combine(since, time(0), tzinfo=UTC)
    return None


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
