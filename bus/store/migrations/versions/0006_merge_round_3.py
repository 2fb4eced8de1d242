"""Merge the branches of round 3: the effects' intent facts (S²low recovery), the Pastell
administration tables and the shared authentication throttle.

Revision ID: 0006_merge_round_3
"""

from __future__ import annotations

revision = "0006_merge_round_3"
down_revision = ("0005_effect_intent", "0005_pastell_admin", "0005_auth_throttle")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
