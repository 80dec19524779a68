"""Engagement invitations (AWS referrals) and our answers to them.

Revision ID: aws_sync_0003
Revises: aws_sync_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "aws_sync_0003"
down_revision = "aws_sync_0002"
branch_labels = None
depends_on = None

S = "aws_sync"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "invitation",
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("invitation_id", sa.Text, nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("sender", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("invited_at", TS),
        sa.Column("expires_at", TS),
        sa.Column("decision", sa.Text),
        sa.Column("decided_by", sa.Text),
        sa.Column("reason", sa.Text),
        sa.Column("decision_state", sa.Text),
        sa.Column("decision_error", sa.Text),
        sa.Column("opportunity_id", sa.Text),
        sa.Column("seen_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("catalog", "invitation_id", name="invitation_pkey"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("invitation", schema=S)
