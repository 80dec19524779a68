"""Gateway schema: outbox, inbox and the first KPI read model.

Revision ID: gateway_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from runtime.migrations import create_outbox_and_inbox, drop_outbox_and_inbox

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)
    op.create_table(
        "partner_count",
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("partners", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("type", name="partner_count_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("partner_count", schema=SCHEMA)
    drop_outbox_and_inbox(SCHEMA)
