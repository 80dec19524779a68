"""The pipeline's copy of each partner's enablement score (from the relationships service's events).

Revision ID: pipeline_0004
Revises: pipeline_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "pipeline_0004"
down_revision = "pipeline_0003"
branch_labels = None
depends_on = None

SCHEMA = "pipeline"


def upgrade() -> None:
    op.create_table(
        "partner_enablement",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("score", sa.Numeric(5, 2)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name="partner_enablement_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("partner_enablement", schema=SCHEMA)
