"""Trailing-twelve-month ARR per partner, kept up to date by the consumers, so the top partners and
ARR by type read ten thousand rows (or ten, by index) instead of a year of partner-months.

Revision ID: gateway_pipeline_0002
Revises: gateway_pipeline_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "gateway_pipeline_0002"
down_revision = "gateway_pipeline_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.create_table(
        "pipeline_arr_window",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("first_month", sa.Date, nullable=False),
        sa.Column("last_month", sa.Date, nullable=False),
        sa.Column("reporting_currency", sa.String(3), nullable=False),
        sa.Column("rates", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pipeline_arr_window_pkey"),
        sa.CheckConstraint("id = 1", name="pipeline_arr_window_single_check"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_partner_arr_currency",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", "currency", name="pipeline_partner_arr_currency_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_partner_arr",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("arr", sa.Numeric(22, 2), nullable=False),
        sa.PrimaryKeyConstraint("partner_id", name="pipeline_partner_arr_pkey"),
        schema=SCHEMA,
    )
    op.create_index("pipeline_partner_arr_arr_idx", "pipeline_partner_arr", [sa.text("arr DESC")], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("pipeline_partner_arr", schema=SCHEMA)
    op.drop_table("pipeline_partner_arr_currency", schema=SCHEMA)
    op.drop_table("pipeline_arr_window", schema=SCHEMA)
