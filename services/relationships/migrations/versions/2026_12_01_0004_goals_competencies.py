"""Hyperscaler goal commitments (progress is counted from the pipeline copy, not stored), competencies
and their renewal checklists.

Revision ID: relationships_0004
Revises: relationships_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "relationships_0004"
down_revision = "relationships_0003"
branch_labels = None
depends_on = None

SCHEMA = "relationships"


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "goal",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hyperscaler", sa.String(20), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("target", sa.Numeric(16, 2), nullable=False),
        sa.Column("currency", sa.String(3)),
        sa.Column("manual_progress", sa.Numeric(16, 2)),
        sa.Column("owner", sa.Text),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        _ts("created_at"), _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="goal_pkey"),
        sa.CheckConstraint("target > 0 AND (manual_progress IS NULL OR manual_progress >= 0)",
                           name="goal_amounts_check"),
        schema=SCHEMA,
    )
    # The goals page lists by hyperscaler and period.
    op.create_index("goal_hyperscaler_period_idx", "goal", ["hyperscaler", "period"], schema=SCHEMA)
    op.create_table(
        "competency",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("hyperscaler", sa.String(20), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("achieved_on", sa.Date),
        sa.Column("renewal_date", sa.Date),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("notes", sa.Text),
        _ts("created_at"), _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="competency_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "competency_requirement",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("competency_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("required", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("due_date", sa.Date),
        sa.PrimaryKeyConstraint("id", name="competency_requirement_pkey"),
        sa.ForeignKeyConstraint(["competency_id"], [f"{SCHEMA}.competency.id"], ondelete="CASCADE",
                                name="competency_requirement_competency_id_fkey"),
        sa.CheckConstraint("required >= 1 AND done >= 0 AND done <= required",
                           name="competency_requirement_counts_check"),
        schema=SCHEMA,
    )
    op.create_index("competency_requirement_competency_id_idx", "competency_requirement", ["competency_id"],
                    schema=SCHEMA)


def downgrade() -> None:
    for table in ("competency_requirement", "competency", "goal"):
        op.drop_table(table, schema=SCHEMA)
