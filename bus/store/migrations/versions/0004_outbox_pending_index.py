"""Outbox: a partial index on the pending rows, the only ones the relay reads

Revision ID: 0004_outbox_pending_index
Revises: 0003_effect_outcome
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_outbox_pending_index"
down_revision = "0003_effect_outcome"
branch_labels = None
depends_on = None

PENDING = sa.text("published_at IS NULL")


def upgrade() -> None:
    op.create_index("ix_outbox_pending", "outbox", ["id"], postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade() -> None:
    op.drop_index("ix_outbox_pending", table_name="outbox")
