"""Deal registrations: a partner's registered deal, its conflict check, its owner's decision.

Revision ID: pipeline_0003
Revises: pipeline_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "pipeline_0003"
down_revision = "pipeline_0002"
branch_labels = None
depends_on = None

SCHEMA = "pipeline"


def upgrade() -> None:
    op.create_table(
        "deal_registration",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("customer_key", sa.String(200), nullable=False),
        sa.Column("amount", sa.Numeric(16, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close_date", sa.Date),
        sa.Column("deal_model", sa.String(20), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("conflicts", JSONB, nullable=False),
        sa.Column("submitted_by", sa.Text, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("reason", sa.Text),
        sa.Column("opportunity_id", sa.Uuid),
        sa.PrimaryKeyConstraint("id", name="deal_registration_pkey"),
        sa.ForeignKeyConstraint(["partner_id"], [f"{SCHEMA}.partner.id"], name="deal_registration_partner_id_fkey"),
        sa.ForeignKeyConstraint(["opportunity_id"], [f"{SCHEMA}.opportunity.id"],
                                name="deal_registration_opportunity_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("deal_registration_partner_id_idx", "deal_registration", ["partner_id"], schema=SCHEMA)
    # The conflict check looks registrations up by customer.
    op.create_index("deal_registration_customer_key_idx", "deal_registration", ["customer_key"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("deal_registration", schema=SCHEMA)
