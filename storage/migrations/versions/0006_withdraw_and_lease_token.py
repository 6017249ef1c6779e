"""postings the document no longer needs (desired_hash NULL) and lease-token fencing

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a column in place, so the table is copied.
    with op.batch_alter_table("postings") as batch:
        batch.alter_column("desired_hash", existing_type=sa.String(length=64), nullable=True)
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        batch.drop_column("lease_token")
        batch.alter_column("desired_hash", existing_type=sa.String(length=64), nullable=False)
