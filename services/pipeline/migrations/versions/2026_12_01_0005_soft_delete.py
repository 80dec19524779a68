"""Soft delete of deals and partners (issue 16): `deleted_at` on both, and the partners with money on
the commission ledger (fed by the commissions service's posted-entries events), which are never deleted.

Revision ID: pipeline_0005
Revises: pipeline_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "pipeline_0005"
down_revision = "pipeline_0004"
branch_labels = None
depends_on = None

SCHEMA = "pipeline"


def upgrade() -> None:
    op.add_column("partner", sa.Column("deleted_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("opportunity", sa.Column("deleted_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_table(
        "ledger_partner",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("first_posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name="ledger_partner_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("ledger_partner", schema=SCHEMA)
    op.drop_column("opportunity", "deleted_at", schema=SCHEMA)
    op.drop_column("partner", "deleted_at", schema=SCHEMA)
