"""the postings each bulk resync queued (bulk_postings), so its message follows their outcomes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bulk_postings",
        sa.Column("run_id", ID, sa.ForeignKey("job_runs.id"), nullable=False),
        sa.Column("posting_id", ID, sa.ForeignKey("postings.id"), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "posting_id"),
    )
    op.create_index("ix_bulk_postings_posting", "bulk_postings", ["posting_id", "run_id"])


def downgrade() -> None:
    op.drop_index("ix_bulk_postings_posting", table_name="bulk_postings")
    op.drop_table("bulk_postings")
