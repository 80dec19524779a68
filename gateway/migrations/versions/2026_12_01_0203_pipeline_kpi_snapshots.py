"""Pipeline KPIs kept ready: a generation per scope (the department, each owner, everyone) that the
consumers bump per batch, and today's KPIs per scope stamped with the generations they were
computed at (gateway/read_models/kpi_snapshots.py).

Revision ID: gateway_pipeline_0003
Revises: gateway_pipeline_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_pipeline_0003"
down_revision = "gateway_pipeline_0002"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "pipeline_kpi_generation",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("scope", name="pipeline_kpi_generation_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_kpi_snapshot",
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
        sa.Column("everyone_generation", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("scope", name="pipeline_kpi_snapshot_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("pipeline_kpi_snapshot", schema=SCHEMA)
    op.drop_table("pipeline_kpi_generation", schema=SCHEMA)
