"""Failed authentications throttled through the store (shared by every API process), and the
audit trail of lock-outs

Revision ID: 0005_auth_throttle
Revises: 0004_outbox_pending_index
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_auth_throttle"
down_revision = "0004_outbox_pending_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_throttle",
        sa.Column("face", sa.String(20), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("face", "client"),
    )
    op.create_table(
        "auth_lockouts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("face", sa.String(20), nullable=False),
        sa.Column("client", sa.String(100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_auth_lockouts_at", "auth_lockouts", ["at"])


def downgrade() -> None:
    op.drop_index("ix_auth_lockouts_at", table_name="auth_lockouts")
    op.drop_table("auth_lockouts")
    op.drop_table("auth_throttle")
