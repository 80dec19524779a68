"""Business reviews with a partner (agenda snapshot, notes, decisions) and their follow-up tasks.

Revision ID: relationships_0010
Revises: relationships_0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "relationships_0010"
down_revision = "relationships_0009"
branch_labels = None
depends_on = None

SCHEMA = "relationships"


def upgrade() -> None:
    op.create_table(
        "business_review",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("scheduled_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("attendees", JSONB, nullable=False),
        sa.Column("agenda", JSONB, nullable=False),
        sa.Column("notes", sa.Text),
        sa.Column("decisions", JSONB, nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.Text),
        sa.PrimaryKeyConstraint("id", name="business_review_pkey"),
        schema=SCHEMA,
    )
    op.create_index("business_review_partner_id_idx", "business_review", ["partner_id"], schema=SCHEMA)
    op.create_table(
        "business_review_task",
        sa.Column("review_id", sa.Uuid, nullable=False),
        sa.Column("task_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("review_id", "task_id", name="business_review_task_pkey"),
        sa.ForeignKeyConstraint(["review_id"], [f"{SCHEMA}.business_review.id"], ondelete="CASCADE",
                                name="business_review_task_review_id_fkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("business_review_task", schema=SCHEMA)
    op.drop_table("business_review", schema=SCHEMA)
