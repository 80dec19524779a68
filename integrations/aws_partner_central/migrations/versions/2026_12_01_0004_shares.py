"""Deals shared from PartnerOps to ACE, and how far each has got (created, associated, submitted).

Revision ID: aws_sync_0004
Revises: aws_sync_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "aws_sync_0004"
down_revision = "aws_sync_0003"
branch_labels = None
depends_on = None

S = "aws_sync"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "share",
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("deal_id", sa.Uuid, nullable=False),
        sa.Column("client_token", sa.Text, nullable=False),
        sa.Column("request", JSONB, nullable=False),
        sa.Column("solution_id", sa.Text, nullable=False),
        sa.Column("opportunity_id", sa.Text),
        sa.Column("task_id", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("requested_by", sa.Text, nullable=False),
        sa.Column("requested_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("catalog", "deal_id", name="share_pkey"),
        schema=S,
    )
    op.create_index("ix_share_opportunity_id", "share", ["catalog", "opportunity_id"], unique=True, schema=S)


def downgrade() -> None:
    op.drop_index("ix_share_opportunity_id", table_name="share", schema=S)
    op.drop_table("share", schema=S)
