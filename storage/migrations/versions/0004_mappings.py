"""mappings set from Slack

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'mappings',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('integration', sa.String(length=40), nullable=False),
        sa.Column('what', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('number', sa.BigInteger(), nullable=False),
        sa.Column('set_by', sa.String(length=40), nullable=True),
        sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('integration', 'what', 'source', name='uq_mappings_key'),
    )


def downgrade() -> None:
    op.drop_table('mappings')
