"""Partner quality figures per month (lead quality, customer satisfaction, implementation success).

Revision ID: relationships_0011
Revises: relationships_0010
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "relationships_0011"
down_revision = "relationships_0010"
branch_labels = None
depends_on = None

SCHEMA = "relationships"


def upgrade() -> None:
    op.create_table(
        "partner_quality",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("lead_quality", sa.Numeric(4, 2)),
        sa.Column("customer_satisfaction", sa.Numeric(5, 2)),
        sa.Column("implementation_success", sa.Numeric(5, 2)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_by", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("partner_id", "month", name="partner_quality_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("partner_quality", schema=SCHEMA)
