"""Outbound edits: what each published version set on the deal, and edits on their way to ACE.

Revision ID: aws_sync_0002
Revises: aws_sync_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "aws_sync_0002"
down_revision = "aws_sync_0001"
branch_labels = None
depends_on = None

S = "aws_sync"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("synced_opportunity", sa.Column("fields", JSONB), schema=S)
    op.add_column("synced_opportunity", sa.Column("deal_id", sa.Uuid), schema=S)
    op.create_table(
        "outbound_edit",
        sa.Column("catalog", sa.Text, nullable=False),
        sa.Column("opportunity_id", sa.Text, nullable=False),
        sa.Column("deal_id", sa.Uuid, nullable=False),
        sa.Column("fields", JSONB, nullable=False),
        sa.Column("base", JSONB, nullable=False),
        sa.Column("edited_at", TS, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", TS),
        sa.PrimaryKeyConstraint("catalog", "opportunity_id", name="outbound_edit_pkey"),
        schema=S,
    )
    op.create_index("outbound_edit_sent_at_idx", "outbound_edit", ["sent_at"], schema=S)


def downgrade() -> None:
    op.drop_table("outbound_edit", schema=S)
    op.drop_column("synced_opportunity", "deal_id", schema=S)
    op.drop_column("synced_opportunity", "fields", schema=S)
