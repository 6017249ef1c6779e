"""an attempt says by structure that the worker gave up on a transient failure (gave_up)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("gave_up", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Attempts written before: read once from the text the worker stored then
    # (its exact, case-sensitive prefix; SQLite's LIKE would ignore case).
    attempts = sa.table(
        "attempts", sa.column("outcome", sa.String), sa.column("message", sa.Text), sa.column("gave_up", sa.Boolean)
    )
    prefix = "Gave up after"
    op.get_bind().execute(
        attempts.update()
        .where(attempts.c.outcome == "failed", sa.func.substr(attempts.c.message, 1, len(prefix)) == prefix)
        .values(gave_up=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("gave_up")
