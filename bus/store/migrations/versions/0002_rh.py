"""RH: payslip batches

Revision ID: 0002_rh
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_rh"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flow", sa.String(length=40), nullable=False),
        sa.Column("siren", sa.String(length=9), sa.ForeignKey("collectivites.siren"), nullable=False),
        sa.Column("periode", sa.String(length=7), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("api_key_id", "idempotency_key", name="uq_batches_idempotency"),
    )
    op.create_index("ix_batches_siren", "batches", ["siren"])
    op.create_table(
        "batch_documents",
        sa.Column("batch_id", sa.String(length=36), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("document_id", sa.String(length=36), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("matricule", sa.String(length=30), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", "document_id"),
        sa.UniqueConstraint("document_id"),
    )


def downgrade() -> None:
    op.drop_table("batch_documents")
    op.drop_index("ix_batches_siren", table_name="batches")
    op.drop_table("batches")
