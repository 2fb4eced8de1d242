"""Effects keep the facts a connector records with the intent (S²low: numéro interne, NomFic and
SHA-1), so the lookup after a crash knows what may have been sent

Revision ID: 0005_effect_intent
Revises: 0004_outbox_pending_index
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_effect_intent"
down_revision = "0004_outbox_pending_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("effects", sa.Column("intent", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("effects", "intent")
