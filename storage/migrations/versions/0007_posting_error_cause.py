"""a failed posting names the source value its missing mapping is for (error_cause)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: the text a missing mapping wrote into ``last_error`` before this column existed
_UNMAPPED = re.compile(r"^(?:Gave up after \d+ attempts\. Last error: )?The \S+ '(.*)' has no account mapping in ")


def upgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.add_column(sa.Column("error_cause", sa.String(length=255), nullable=True))
    # Postings that failed before: their cause is read once from the text they stored.
    postings = sa.table(
        "postings",
        sa.column("id", sa.BigInteger),
        sa.column("error_code", sa.String),
        sa.column("last_error", sa.Text),
        sa.column("error_cause", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(postings.c.id, postings.c.last_error).where(postings.c.error_code.like("unmapped\\_%", escape="\\"))
    ).all()
    for pid, text in rows:
        found = _UNMAPPED.match(text or "")
        if found:
            conn.execute(postings.update().where(postings.c.id == pid).values(error_cause=found.group(1)))


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.drop_column("error_cause")
