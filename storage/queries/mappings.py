"""Mappings a person stored, and the failed postings that lacked one."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Mapping, Posting
from storage.states import PostingState


async def stored_mappings(s: AsyncSession) -> list[Mapping]:
    """Every mapping stored in the database."""
    return list((await s.scalars(select(Mapping))).all())


async def mapping_of(s: AsyncSession, integration: str, what: str, source: str) -> Mapping | None:
    """The stored mapping of ``source`` (a ``what``: category, department, ...), if any."""
    return (
        await s.scalars(
            select(Mapping).where(
                Mapping.integration == integration,
                Mapping.what == what,
                Mapping.source == source,
            )
        )
    ).one_or_none()


async def failed_for_missing(s: AsyncSession, integration_id: int | None, code: str, cause: str) -> list[int]:
    """Failed postings of the integration whose failure is ``code`` caused by ``cause``."""
    return list(
        (
            await s.scalars(
                select(Posting.id).where(
                    Posting.integration_id == integration_id,
                    Posting.state == PostingState.FAILED,
                    Posting.error_code == code,
                    Posting.error_cause == cause,
                )
            )
        ).all()
    )
