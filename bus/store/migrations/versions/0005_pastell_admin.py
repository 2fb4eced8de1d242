"""Pastell administration: API key holders (`id_u`), connector ids (`id_ce`), associations (`id_fe`)

Revision ID: 0005_pastell_admin
Revises: 0004_outbox_pending_index
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_pastell_admin"
down_revision = "0004_outbox_pending_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key_holders",
        sa.Column("id_u", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=False),
        sa.Column("nom", sa.String(length=200), nullable=False),
        sa.Column("prenom", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["api_key_id"], ["api_keys.id"]),
        sa.PrimaryKeyConstraint("id_u"),
        sa.UniqueConstraint("api_key_id"),
    )
    op.create_table(
        "pastell_connecteurs",
        sa.Column("id_ce", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("slot", sa.String(length=60), nullable=True),
        sa.Column("id_connecteur", sa.String(length=60), nullable=False),
        sa.Column("libelle", sa.String(length=200), nullable=False),
        sa.Column("parked", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["siren"], ["collectivites.siren"]),
        sa.PrimaryKeyConstraint("id_ce"),
        sa.UniqueConstraint("siren", "slot", name="uq_pastell_connecteur_slot"),
    )
    op.create_index("ix_pastell_connecteurs_siren", "pastell_connecteurs", ["siren"])
    op.create_table(
        "pastell_associations",
        sa.Column("id_fe", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("flux", sa.String(length=60), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["siren"], ["collectivites.siren"]),
        sa.PrimaryKeyConstraint("id_fe"),
        sa.UniqueConstraint("siren", "flux", "type", name="uq_pastell_association"),
    )
    op.create_index("ix_pastell_associations_siren", "pastell_associations", ["siren"])


def downgrade() -> None:
    op.drop_table("pastell_associations")
    op.drop_table("pastell_connecteurs")
    op.drop_table("api_key_holders")
