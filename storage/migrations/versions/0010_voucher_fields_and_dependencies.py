"""a posting keeps the voucher fields it sent, the change a booked voucher did not get,
who marked that handled, and which posting of its document it waits for

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[object]:  # JSONB on PostgreSQL, as the other JSON columns
    json: sa.types.TypeEngine[object] = sa.JSON()
    return json.with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # Postings synced before this keep no fields: a later change shows only the new values.
    with op.batch_alter_table("postings") as batch:
        batch.add_column(sa.Column("synced_fields", _json(), nullable=True))
        batch.add_column(sa.Column("unsent_change", _json(), nullable=True))
        batch.add_column(sa.Column("handled_by", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("depends_on", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("postings") as batch:
        for name in ("depends_on", "handled_at", "handled_by", "unsent_change", "synced_fields"):
            batch.drop_column(name)
