"""Effects keep their outcome event, so a redrive can replay an outcome whose event was lost

Revision ID: 0003_effect_outcome
Revises: 0002_ops, 0002_pastell, 0002_rh
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_effect_outcome"
down_revision = ("0002_ops", "0002_pastell", "0002_rh")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("effects", sa.Column("outcome", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("effects", "outcome")
