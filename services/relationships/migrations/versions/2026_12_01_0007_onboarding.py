"""Partner onboarding: the editable template, one plan per partner, its steps with owner, due date and
completion.

Revision ID: relationships_0007
Revises: relationships_0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "relationships_0007"
down_revision = "relationships_0006"
branch_labels = None
depends_on = None

SCHEMA = "relationships"


def upgrade() -> None:
    op.create_table(
        "onboarding_template",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("steps", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="onboarding_template_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "onboarding_plan",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("partner_name", sa.Text, nullable=False),
        sa.Column("partner_type", sa.String(20), nullable=False),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="onboarding_plan_pkey"),
        sa.UniqueConstraint("partner_id", name="onboarding_plan_partner_id_key"),
        schema=SCHEMA,
    )
    op.create_table(
        "onboarding_step",
        sa.Column("plan_id", sa.Uuid, nullable=False),
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("week", sa.SmallInteger, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True)),
        sa.Column("done_by", sa.Text),
        sa.PrimaryKeyConstraint("plan_id", "key", name="onboarding_step_pkey"),
        sa.ForeignKeyConstraint(["plan_id"], [f"{SCHEMA}.onboarding_plan.id"], ondelete="CASCADE",
                                name="onboarding_step_plan_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("onboarding_step_owner_idx", "onboarding_step", ["owner"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("onboarding_step", schema=SCHEMA)
    op.drop_table("onboarding_plan", schema=SCHEMA)
    op.drop_table("onboarding_template", schema=SCHEMA)
