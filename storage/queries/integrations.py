"""Integrations: their rows, a person's pause switch, and postings released by auto-transfer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Integration, Posting
from storage.rows import rows_changed
from storage.states import PostingState


async def all_integrations(s: AsyncSession) -> list[Integration]:
    """Every integration row."""
    return list((await s.scalars(select(Integration))).all())


async def integration_id_of(s: AsyncSession, name: str) -> int | None:
    """The id of the integration named ``name`` (``None``: no such row)."""
    return await s.scalar(select(Integration.id).where(Integration.name == name))


async def set_integration_paused(s: AsyncSession, name: str, paused: bool) -> int:
    """Pause or resume; how many rows changed (0: it already was)."""
    done = await s.execute(
        update(Integration)
        .where(Integration.name == name, Integration.paused.is_not(paused))
        .values(paused=paused)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(done)


async def release_auto_transfer_waits(
    s: AsyncSession, integration_ids: Sequence[int], wait_code: str, now: datetime
) -> None:
    """Postings that waited for auto-transfer (``wait_code``) of these integrations: queued."""
    await s.execute(
        update(Posting)
        .where(
            Posting.integration_id.in_(integration_ids),
            Posting.state == PostingState.WAITING,
            Posting.error_code == wait_code,
        )
        .values(
            state=PostingState.PENDING,
            error_code=None,
            last_error=None,
            next_attempt_at=now,
            queued_at=now,
            updated_at=now,
        )
    )
