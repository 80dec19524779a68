"""Pipeline read models: partners and opportunities as the pipeline last described them, stage
probabilities and settings, and the small aggregates the KPI endpoint reads (so it stays fast with a
million opportunities). Replaces partner_count: counts now come from the partner table, which also
knows about type changes and archiving.

Revision ID: gateway_pipeline_0001
Revises: gateway_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "gateway_pipeline_0001"
down_revision = "gateway_0001"
branch_labels = ("pipeline",)
depends_on = None

SCHEMA = "gateway"
MONEY = sa.Numeric(20, 2)


def _count(name: str = "deals") -> sa.Column:
    return sa.Column(name, sa.BigInteger, nullable=False, server_default="0")


def _money(name: str = "amount") -> sa.Column:
    return sa.Column(name, MONEY, nullable=False, server_default="0")


def upgrade() -> None:
    op.drop_table("partner_count", schema=SCHEMA)
    op.create_table(
        "pipeline_partner",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("tier", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pipeline_partner_pkey"),
        schema=SCHEMA,
    )
    op.create_index("pipeline_partner_owner_idx", "pipeline_partner", ["owner"], schema=SCHEMA)
    op.create_table(
        "pipeline_opportunity",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("owner", sa.Text),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close_date", sa.Date),
        sa.Column("hyperscaler", sa.String(10)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("launched_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pipeline_opportunity_pkey"),
        schema=SCHEMA,
    )
    # The oldest open deals in their stage (stuck deals), overall and per owner.
    op.create_index("pipeline_opportunity_open_since_idx", "pipeline_opportunity", ["stage_entered_at"],
                    schema=SCHEMA, postgresql_where=sa.text("outcome = 'open'"))
    op.create_index("pipeline_opportunity_owner_open_since_idx", "pipeline_opportunity",
                    ["owner", "stage_entered_at"], schema=SCHEMA, postgresql_where=sa.text("outcome = 'open'"))
    op.create_table(
        "pipeline_stage",
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("probability", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("set_version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("pipeline", "stage", name="pipeline_stage_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_settings",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pipeline_settings_pkey"),
        schema=SCHEMA,
    )
    # Aggregates: each opportunity adds its contribution; a change subtracts the old one.
    op.create_table(
        "pipeline_open_agg",
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("close_month", sa.Date, nullable=False),
        _count(),
        _money(),
        sa.PrimaryKeyConstraint("pipeline", "stage", "owner", "currency", "close_month",
                                name="pipeline_open_agg_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_closed_agg",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _count(),
        _money(),
        sa.Column("cycle_seconds", sa.Numeric(24, 0), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("month", "pipeline", "outcome", "owner", "currency", name="pipeline_closed_agg_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_partner_won_agg",
        sa.Column("partner_id", sa.Uuid, nullable=False),
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        _count(),
        _money(),
        sa.PrimaryKeyConstraint("partner_id", "month", "currency", name="pipeline_partner_won_agg_pkey"),
        schema=SCHEMA,
    )
    op.create_index("pipeline_partner_won_agg_month_idx", "pipeline_partner_won_agg", ["month"], schema=SCHEMA,
                    postgresql_include=["partner_id", "currency", "amount"])
    op.create_table(
        "pipeline_launch_agg",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("hyperscaler", sa.String(10), nullable=False),
        sa.Column("owner", sa.Text, nullable=False),
        _count("launches"),
        sa.PrimaryKeyConstraint("month", "hyperscaler", "owner", name="pipeline_launch_agg_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "pipeline_stuck_agg",
        sa.Column("entered_day", sa.Date, nullable=False),
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        _count(),
        sa.PrimaryKeyConstraint("entered_day", "pipeline", "stage", name="pipeline_stuck_agg_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for name in ("pipeline_stuck_agg", "pipeline_launch_agg", "pipeline_partner_won_agg", "pipeline_closed_agg",
                 "pipeline_open_agg", "pipeline_settings", "pipeline_stage", "pipeline_opportunity",
                 "pipeline_partner"):
        op.drop_table(name, schema=SCHEMA)
    # Empty: `partnerops rebuild-read-models` fills it again after a downgrade.
    op.create_table(
        "partner_count",
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("partners", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("type", name="partner_count_pkey"),
        schema=SCHEMA,
    )
