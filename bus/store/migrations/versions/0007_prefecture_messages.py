"""The préfecture's messages about acknowledged actes (2-1, 3-1, 4-1, 5-1), the collectivité's
replies (their effects ledger) and when each collectivité's TdT is next asked (bus/courriers)

Revision ID: 0007_prefecture_messages
Revises: 0006_merge_round_3
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_prefecture_messages"
down_revision = "0006_merge_round_3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prefecture_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=36), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("remote_id", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("siren", "remote_id", name="uq_prefecture_messages_remote"),
    )
    op.create_index("ix_prefecture_messages_document_id", "prefecture_messages", ["document_id"])
    op.create_index("ix_prefecture_messages_siren", "prefecture_messages", ["siren"])
    op.create_index("ix_prefecture_messages_state", "prefecture_messages", ["state"])
    op.create_index("ix_prefecture_messages_received_at", "prefecture_messages", ["received_at"])
    op.create_table(
        "prefecture_replies",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("prefecture_messages.id"), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("remote_id", sa.String(length=100), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "generation", name="uq_prefecture_replies_generation"),
    )
    op.create_index("ix_prefecture_replies_message_id", "prefecture_replies", ["message_id"])
    op.create_index("ix_prefecture_replies_status", "prefecture_replies", ["status"])
    op.create_index("ix_prefecture_replies_next_at", "prefecture_replies", ["next_at"])
    op.create_table(
        "prefecture_polls",
        sa.Column("siren", sa.String(length=9), sa.ForeignKey("collectivites.siren"), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("polled_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("siren"),
    )


def downgrade() -> None:
    op.drop_table("prefecture_polls")
    op.drop_table("prefecture_replies")
    op.drop_table("prefecture_messages")
