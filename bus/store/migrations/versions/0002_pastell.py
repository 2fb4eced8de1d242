"""Pastell API compatibility: stable id_e per collectivité, Pastell documents (drafts).

Revision ID: 0002_pastell
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002_pastell'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    entites = op.create_table(
        'pastell_entites',
        sa.Column('id_e', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('siren', sa.String(length=9), nullable=False),
        sa.ForeignKeyConstraint(['siren'], ['collectivites.siren']),
        sa.PrimaryKeyConstraint('id_e'),
        sa.UniqueConstraint('siren'),
    )
    sirens = [row[0] for row in op.get_bind().execute(sa.text('SELECT siren FROM collectivites ORDER BY siren'))]
    if sirens:
        op.bulk_insert(entites, [{'siren': s} for s in sirens])
    op.create_table(
        'pastell_documents',
        sa.Column('id_d', sa.String(length=36), nullable=False),
        sa.Column('id_e', sa.Integer(), nullable=False),
        sa.Column('siren', sa.String(length=9), nullable=False),
        sa.Column('flux', sa.String(length=60), nullable=False),
        sa.Column('titre', sa.String(length=500), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('files', sa.JSON(), nullable=False),
        sa.Column('last_action', sa.String(length=60), nullable=False),
        sa.Column('last_message', sa.Text(), nullable=False),
        sa.Column('last_action_at', sa.DateTime(), nullable=False),
        sa.Column('deposited', sa.Boolean(), nullable=False),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('api_key_id', sa.String(length=32), nullable=True),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('modified_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id_d'),
        sa.UniqueConstraint('api_key_id', 'idempotency_key', name='uq_pastell_idempotency'),
    )
    for column in ('id_e', 'siren', 'flux'):
        op.create_index(f'ix_pastell_documents_{column}', 'pastell_documents', [column])


def downgrade() -> None:
    op.drop_table('pastell_documents')
    op.drop_table('pastell_entites')
