"""Button listeners: ack at once, then parse -> call sync -> report (the gate authorized).

Every listener acks before anything else (Slack gives three seconds) and hands
the work to a task. The work never edits the message: the engine's change
feed makes the notifier rebuild it from the database ("resync requested by",
then synced or failing again). Only what concerns the clicker alone (a
refusal, "already queued", the log) is answered ephemerally.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import ActionId, GroupRef, HandledRef, LogPageRef, PostingIdRef, PostingRef
from bot.auth import record
from bot.block_kit import SlackBody
from bot.outbox.delivery import call
from bot.postings.log_blocks import LOG_PAGE_SIZE, log_page, note, outcome_note, resync_buttons
from bot.postings.notices import load_document_notices, load_log
from bot.runtime import Runtime
from bot.slack import SlackBot
from handlers.buttons import Press, Work, listen
from storage.models import Document, Posting
from storage.queries.groups import mute_group
from storage.states import PostingState
from sync.bulk import BulkFilter, resync_many
from sync.resync import ignore_posting, mark_handled, resync_document

log = logging.getLogger(__name__)


class ButtonActions:
    """The listeners of every :class:`bot.actions.ActionId`."""

    def __init__(self, runtime: Runtime, bot: SlackBot):
        self.runtime = runtime
        self.engine = runtime.engine
        self.db = runtime.db
        self.bot = bot

    def register(self, app: AsyncApp) -> None:
        """One listener per button."""
        works: dict[ActionId, Work] = {
            ActionId.RESYNC_INVOICE: lambda c, ref: self.resync(c, ref.document, "invoice", ref.posting),
            ActionId.RESYNC_PAYMENT: lambda c, ref: self.resync(c, ref.document, "payment", ref.posting),
            ActionId.RESYNC_POSTING: self.resync_posting,
            ActionId.IGNORE: self.ignore,
            ActionId.MARK_HANDLED: self.mark_handled,
            ActionId.RESYNC_GROUP: self.resync_group,
            ActionId.SHOW_LOG: self.show_log,
            ActionId.LOG_PAGE: self.log_page,
        }
        for action_id, work in works.items():
            listen(app, action_id, self._guarded(work), self.unreadable)

    async def unreadable(self, click: Press, exc: ValueError) -> None:
        """A value we did not send (an old message, or not Slack's): say so, change nothing."""
        log.warning("unusable button value on %s: %s", click.action, exc)
        await self.tell(
            click, note("That button no longer works; the message is out of date. Nothing was changed.")
        )

    def _guarded(self, work: Work) -> Work:
        async def run(click: Press, ref: Any) -> None:
            await self._run(click, ref, work)

        return run

    async def _run(self, click: Press, ref: Any, work: Work) -> None:
        # The allow-list gate (handlers/gate.py) let this click through already.
        try:
            await work(click, ref)
        except ValueError as exc:
            await self.unreadable(click, exc)
        except Exception:
            log.exception("%s by %s failed", click.action, click.user)
            await self.tell(
                click,
                note(
                    "That did not work because of an error on our side "
                    "(details are in the server log). Try again in a "
                    "minute; the message shows what did change."
                ),
            )

    async def tell(self, click: Press, body: SlackBody) -> None:
        """An ephemeral answer only the clicker sees."""
        if not click.channel:
            return
        await call(
            self.bot.client.chat_postEphemeral(
                channel=click.channel, user=click.user, text=body.text, blocks=body.blocks
            ),
            "chat.postEphemeral",
        )

    # -- the work ----------------------------------------------------------------------------
    async def resync(
        self, click: Press, document_id: int, posting_kind: str, shown: int | None = None
    ) -> None:
        """Resync one posting of a document (the engine writes the activity row).

        The message the click came from shows its own posting's resync; a resync of
        another posting (a bill's payment from its invoice's message) is told privately.
        """
        async with self.db.sessions() as s:
            doc = await s.get(Document, document_id)
        if doc is None:
            await self.tell(click, note("That document no longer exists."))
            return
        outcomes = await resync_document(
            self.engine, doc.source, doc.kind, doc.external_id, [posting_kind], actor=click.user
        )
        if not any(o.ok for o in outcomes):
            # Double click, or a colleague was quicker: nothing ran twice; say so.
            await self.tell(click, outcome_note([o.message for o in outcomes]))
        elif shown is not None and all(o.posting_id != shown for o in outcomes if o.ok):
            elsewhere = " ".join(o.message for o in outcomes if o.ok)
            await self.tell(
                click,
                note(
                    f"{elsewhere} This message is about another posting, so it does not change; "
                    "should it fail again, its own message says so in the channel."
                ),
            )

    async def resync_posting(self, click: Press, ref: PostingRef) -> None:
        """Resync the one posting the button names (a payroll run's journal)."""
        async with self.db.sessions() as s:
            posting = await s.get(Posting, ref.posting)
        if posting is None:
            await self.tell(click, note("That posting no longer exists."))
            return
        await self.resync(
            click, ref.document, posting.slot, ref.posting
        )  # one journal of a run, not every period

    async def ignore(self, click: Press, ref: PostingIdRef) -> None:
        """Ignore one posting until someone resyncs it."""
        outcome = await ignore_posting(self.engine, ref.posting, click.user)
        if not outcome.ok:
            await self.tell(click, outcome_note([outcome.message]))

    async def mark_handled(self, click: Press, ref: HandledRef) -> None:
        """A booked voucher's unsent change is corrected in the ledger: off the attention list."""
        async with self.db.sessions() as s:
            posting = await s.get(Posting, ref.posting)
        if posting is None or posting.external_ref != ref.voucher:
            await self.tell(
                click, note("That posting is no longer booked as that voucher; nothing was changed.")
            )
            return
        outcome = await mark_handled(self.engine, ref.posting, click.user)
        if not outcome.ok:
            await self.tell(click, outcome_note([outcome.message]))

    async def resync_group(self, click: Press, ref: GroupRef) -> None:
        """Resync all: every document of the group (invoice, and payment where paid)."""
        group_id = ref.group
        # a person is working on it: a muted group's message must show what happens
        await self.db.run(lambda conn: mute_group(conn, group_id, None))
        result = await resync_many(
            self.engine, BulkFilter(error_group_id=group_id, states=(PostingState.FAILED,)), click.user
        )
        await record(
            self.db,
            self.engine.clock(),
            actor=click.user,
            action="resync_all",
            subject=f"error_group:{group_id}",
            outcome="ok" if result.queued else "refused",
            detail={"documents": result.documents, "queued": result.queued, "refused": result.refused},
        )
        if not result.queued:
            await self.tell(click, note("Nothing to resync: those postings are already queued or fixed."))

    async def show_log(self, click: Press, ref: PostingRef) -> None:
        """The first page of the document's log in the posting's integration."""
        async with self.db.sessions() as s:
            posting = await s.get(Posting, ref.posting)
        await self._log(click, ref.document, posting.integration_id if posting else None, 0)

    async def log_page(self, click: Press, ref: LogPageRef) -> None:
        """Older entries: another page of the log."""
        await self._log(click, ref.document, ref.integration, ref.page)

    async def _log(self, click: Press, document_id: int, integration_id: int | None, page: int) -> None:
        async with self.db.sessions() as s:
            loaded = await load_log(s, document_id, integration_id)
            if loaded is not None:
                notices = await load_document_notices(s, document_id, loaded[2])
        if loaded is None:
            await self.tell(click, note("That document no longer exists."))
            return
        doc, integration, integration_id, entries = loaded
        start = page * LOG_PAGE_SIZE
        await self.tell(
            click,
            log_page(
                doc,
                integration,
                integration_id,
                entries[start : start + LOG_PAGE_SIZE],
                page,
                has_more=len(entries) > start + LOG_PAGE_SIZE,
                resync=resync_buttons(notices),
            ),
        )
        await record(
            self.db,
            self.engine.clock(),
            actor=click.user,
            action="show_log",
            subject=f"document:{document_id}",
            outcome="ok",
            detail={"page": page},
        )
