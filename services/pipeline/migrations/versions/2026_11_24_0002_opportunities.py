"""Partners grow tiers, scorecards, archiving and versions; opportunities with stage history and
next steps; configured stage sets and settings; CSV import staging.

Revision ID: pipeline_0002
Revises: pipeline_0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "pipeline_0002"
down_revision = "pipeline_0001"
branch_labels = None
depends_on = None

SCHEMA = "pipeline"
MONEY = sa.Numeric(16, 2)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    for column in (
        # Partners stored before tiers followed revenue keep the tier someone chose for them.
        sa.Column("tier_auto", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("strategic_fit", sa.Numeric(4, 2)),
        sa.Column("revenue_potential", sa.Numeric(4, 2)),
        sa.Column("feasibility", sa.Numeric(4, 2)),
        sa.Column("risk", sa.Numeric(4, 2)),
        sa.Column("score", sa.Numeric(5, 2)),
        sa.Column("trailing_revenue", MONEY),
        _ts("archived_at", nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    ):
        op.add_column("partner", column, schema=SCHEMA)
    op.alter_column("partner", "tier_auto", server_default=sa.true(), schema=SCHEMA)
    op.create_index("partner_owner_idx", "partner", ["owner"], schema=SCHEMA)
    op.create_index("partner_score_idx", "partner", ["score"], schema=SCHEMA,
                    postgresql_where=sa.text("archived_at IS NULL"))

    op.create_table(
        "opportunity",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("pipeline", sa.String(40), nullable=False),
        sa.Column("stage", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(8), nullable=False),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("expected_close_date", sa.Date),
        sa.Column("owner", sa.Text),
        sa.Column("deal_model", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("external_id", sa.String(200)),
        _ts("source_modified_at", nullable=True),
        sa.Column("hyperscaler", sa.String(10)),
        sa.Column("ace", JSONB),
        sa.Column("gcp", JSONB),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("stage_entered_at"),
        _ts("closed_at", nullable=True),
        _ts("launched_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="opportunity_pkey"),
        sa.ForeignKeyConstraint(["partner_id"], [f"{SCHEMA}.partner.id"], name="opportunity_partner_id_fkey"),
        sa.CheckConstraint("amount >= 0", name="opportunity_amount_check"),
        sa.CheckConstraint("outcome IN ('open', 'won', 'lost')", name="opportunity_outcome_check"),
        schema=SCHEMA,
    )
    # Idempotent ingestion: one opportunity per (source, external id).
    op.create_index("opportunity_source_external_id_key", "opportunity", ["source", "external_id"], unique=True,
                    schema=SCHEMA, postgresql_where=sa.text("external_id IS NOT NULL"))
    op.create_index("opportunity_created_at_idx", "opportunity", ["created_at", "id"], schema=SCHEMA)
    op.create_index("opportunity_owner_idx", "opportunity", ["owner"], schema=SCHEMA)
    op.create_index("opportunity_partner_id_idx", "opportunity", ["partner_id"], schema=SCHEMA)
    op.create_index("opportunity_pipeline_stage_idx", "opportunity", ["pipeline", "stage"], schema=SCHEMA)
    op.create_index("opportunity_expected_close_date_idx", "opportunity", ["expected_close_date"], schema=SCHEMA)
    # Trailing won revenue per partner, for tiers.
    op.create_index("opportunity_partner_won_idx", "opportunity", ["partner_id", "closed_at"], schema=SCHEMA,
                    postgresql_where=sa.text("outcome = 'won'"))

    op.create_table(
        "opportunity_stage_change",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid, nullable=False),
        sa.Column("from_stage", sa.String(40)),
        sa.Column("to_stage", sa.String(40), nullable=False),
        sa.Column("changed_by", sa.Text),
        _ts("changed_at"),
        sa.PrimaryKeyConstraint("id", name="opportunity_stage_change_pkey"),
        sa.ForeignKeyConstraint(["opportunity_id"], [f"{SCHEMA}.opportunity.id"], ondelete="CASCADE",
                                name="opportunity_stage_change_opportunity_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("opportunity_stage_change_opportunity_id_idx", "opportunity_stage_change",
                    ["opportunity_id", "id"], schema=SCHEMA)
    op.create_table(
        "opportunity_next_step",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("opportunity_id", sa.Uuid, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Text),
        _ts("recorded_at"),
        sa.PrimaryKeyConstraint("id", name="opportunity_next_step_pkey"),
        sa.ForeignKeyConstraint(["opportunity_id"], [f"{SCHEMA}.opportunity.id"], ondelete="CASCADE",
                                name="opportunity_next_step_opportunity_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("opportunity_next_step_opportunity_id_idx", "opportunity_next_step",
                    ["opportunity_id", "id"], schema=SCHEMA)

    op.create_table(
        "stage_set",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("key", name="stage_set_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "settings",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="settings_pkey"),
        sa.CheckConstraint("id = 1", name="settings_single_check"),
        schema=SCHEMA,
    )

    op.create_table(
        "import_batch",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("columns", JSONB, nullable=False),
        sa.Column("actor", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="import_batch_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "import_row",
        sa.Column("batch_id", sa.Uuid, nullable=False),
        sa.Column("row", sa.Integer, nullable=False),
        sa.Column("data", JSONB),
        sa.Column("errors", JSONB),
        sa.PrimaryKeyConstraint("batch_id", "row", name="import_row_pkey"),
        sa.ForeignKeyConstraint(["batch_id"], [f"{SCHEMA}.import_batch.id"], ondelete="CASCADE",
                                name="import_row_batch_id_fkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("import_row", schema=SCHEMA)
    op.drop_table("import_batch", schema=SCHEMA)
    op.drop_table("settings", schema=SCHEMA)
    op.drop_table("stage_set", schema=SCHEMA)
    op.drop_table("opportunity_next_step", schema=SCHEMA)
    op.drop_table("opportunity_stage_change", schema=SCHEMA)
    op.drop_table("opportunity", schema=SCHEMA)
    op.drop_index("partner_score_idx", "partner", schema=SCHEMA)
    op.drop_index("partner_owner_idx", "partner", schema=SCHEMA)
    for name in ("version", "archived_at", "trailing_revenue", "score", "risk", "feasibility",
                 "revenue_potential", "strategic_fit", "tier_auto"):
        op.drop_column("partner", name, schema=SCHEMA)
