"""Partners, with the outbox and inbox.

Revision ID: pipeline_0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from runtime.migrations import create_outbox_and_inbox, drop_outbox_and_inbox

revision = "pipeline_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "pipeline"


def upgrade() -> None:
    create_outbox_and_inbox(SCHEMA)
    op.create_table(
        "partner",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="partner_pkey"),
        schema=SCHEMA,
    )
    op.create_index("partner_lower_name_key", "partner", [sa.text("lower(name)")], unique=True, schema=SCHEMA)
    op.create_index("partner_type_idx", "partner", ["type"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("partner", schema=SCHEMA)
    drop_outbox_and_inbox(SCHEMA)
