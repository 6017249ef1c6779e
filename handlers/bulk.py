"""The bulk resync modal: shows how many documents, lets a person narrow them, then queues.

Opening: ``/ledger resync failed [integration] [--since] [--error]`` (or the App
Home button). Narrowing a field re-counts and updates the modal in place.
Submitting checks the input (``response_action: errors``), closes the modal,
and reports progress in one message the outbox keeps current (queued, then sent or
failed again, grouped by reason).
A submit sent twice queues nothing twice: the engine's guarded updates refuse
postings already queued, and a view already being processed is not started again.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.actions import ActionId
from bot.bulk.modal import BULK_CALLBACK, BulkSelection, bulk_modal
from bot.bulk.progress import show_progress
from bot.outbox.delivery import call
from bot.runtime import Runtime
from bot.slack import SlackBot, urgent
from handlers.buttons import ack_only
from sync.bulk import BulkFilter, bulk_count, bulk_documents, resync_many, start_bulk_run
from sync.overview import needs_attention

log = logging.getLogger(__name__)

#: the context key of an accepted submission, from the ack to the lazy listener
BULK_RUN = "ledgerops_bulk_run"


def read_selection(view: dict[str, Any]) -> BulkSelection | None:
    """The selection in a submitted modal, or ``None`` when its values are not what we sent."""
    try:
        return BulkSelection.from_view(view)
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None


class BulkResyncModal:
    """Open, narrow and submit the bulk resync modal."""

    def __init__(self, runtime: Runtime, bot: SlackBot):
        self.runtime = runtime
        self.engine = runtime.engine
        self.bot = bot
        self._started: set[str] = set()  # view ids whose submit is being / was processed

    def register(self, app: AsyncApp) -> None:
        app.view(BULK_CALLBACK)(ack=self.on_submit, lazy=[self.run_later])
        app.action(ActionId.BULK_FILTER.value)(ack=ack_only, lazy=[urgent(self.narrow_later)])

    async def render(self, selection: BulkSelection) -> dict[str, Any]:
        flt = selection.filter(self.engine.integration_ids)
        count = await bulk_count(self.engine, flt)
        docs = await bulk_documents(
            self.engine, BulkFilter(flt.integration, flt.states, flt.since, flt.until, flt.error_group_id)
        )
        async with self.engine.db.sessions() as s:
            groups = await needs_attention(s, limit=100, sample=0)
        return bulk_modal(selection, count, docs, sorted(self.engine.integrations), groups)

    async def open(self, trigger_id: str, cmd: Any, user: str, channel: str) -> None:
        selection = BulkSelection(
            integration=cmd.integration, since=cmd.since, error_group=cmd.error_group, channel=channel
        )
        view = await self.render(selection)
        result = await call(self.bot.client.views_open(trigger_id=trigger_id, view=view), "views.open")
        if not result.ok:
            log.warning("could not open the bulk resync modal: %s", result.error)

    async def narrow_later(self, body: dict[str, Any]) -> None:
        """A narrowing field changed: re-count at once (a person is looking at the modal)."""
        view = body.get("view") or {}
        selection = read_selection(view)
        if selection is None or not isinstance(view.get("id"), str):
            return  # not a modal of ours: nothing to re-count
        await self.narrow(view, selection)

    async def narrow(self, view: dict[str, Any], selection: BulkSelection) -> None:
        """Re-count for the narrowed selection and show it in the open modal."""
        updated = await self.render(selection)
        await call(
            self.bot.client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated),
            "views.update",
        )

    async def on_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: dict[str, Any]
    ) -> None:
        """Check the submission in the ack (errors keep the modal open); the work runs lazily."""
        selection = read_selection(view)
        if selection is None:
            await ack(response_action="errors", errors={"states": "Could not read this form; open it again."})
            return
        errors = selection.errors(self.engine.integrations)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        flt = selection.filter(self.engine.integration_ids)
        if not await bulk_count(self.engine, flt):
            await ack(
                response_action="errors", errors={"states": "Nothing matches this selection; widen it."}
            )
            return
        await ack()
        view_id = str(view.get("id") or "")
        if view_id and view_id in self._started:
            return  # the same submit again: it is already running
        self._started.add(view_id)
        user = (body.get("user") or {}).get("id", "")
        context[BULK_RUN] = (flt, user, selection.channel)  # bolt copies it to run_later

    async def run_later(self, context: dict[str, Any]) -> None:
        """The accepted submission's work, in its turn."""
        accepted = context.get(BULK_RUN)
        if accepted is not None:
            await self.run(*accepted)

    async def run(self, flt: BulkFilter, user: str, channel: str) -> None:
        """Queue the selection; one message follows it (``bot/bulk/progress.py``): queued,
        then sent or failed again, rebuilt by the outbox as the postings' outcomes arrive."""
        total = await bulk_count(self.engine, flt)
        run_id = await start_bulk_run(self.engine, user, total)
        await show_progress(self.runtime.db, run_id, channel, self.engine.clock())
        self._poke()
        await resync_many(self.engine, flt, user, run_id=run_id)
        await show_progress(self.runtime.db, run_id, channel, self.engine.clock())
        self._poke()

    def _poke(self) -> None:
        if self.runtime.notifier is not None:
            self.runtime.notifier.poke()
