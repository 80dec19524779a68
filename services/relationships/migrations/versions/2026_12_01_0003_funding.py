"""Funding programs as configured, fund requests with their stage moves and milestones, the deadlines
published so far; the shared copy of the pipeline's deals learns what goals and funding ROI count by
(hyperscaler, deal model, pipeline, launch time, external id such as the ACE id).

Revision ID: relationships_0003
Revises: relationships_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "relationships_0003"
down_revision = "relationships_0002"
branch_labels = None
depends_on = None

SCHEMA = "relationships"
MONEY = sa.Numeric(16, 2)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "funding_program",
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("key", name="funding_program_pkey"),
        schema=SCHEMA,
    )
    op.create_table(
        "fund_request",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("program", sa.String(40), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("phase", sa.Text),
        sa.Column("stage", sa.String(30), nullable=False),
        sa.Column("partner_id", sa.Uuid),
        sa.Column("owner", sa.Text),
        sa.Column("aws_fund_request_id", sa.String(64)),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("requested", MONEY, nullable=False),
        sa.Column("approved", MONEY),
        sa.Column("activity_start", sa.Date, nullable=False),
        sa.Column("activity_end", sa.Date, nullable=False),
        sa.Column("opportunities", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("description", sa.Text),
        _ts("created_at"), _ts("updated_at"), _ts("stage_entered_at"),
        sa.PrimaryKeyConstraint("id", name="fund_request_pkey"),
        sa.UniqueConstraint("aws_fund_request_id", name="fund_request_aws_fund_request_id_key"),
        sa.CheckConstraint("requested >= 0 AND (approved IS NULL OR approved >= 0)",
                           name="fund_request_amounts_check"),
        schema=SCHEMA,
    )
    # The list filters by stage and program, and pages by creation.
    op.create_index("fund_request_stage_idx", "fund_request", ["stage", "created_at"], schema=SCHEMA)
    op.create_index("fund_request_partner_idx", "fund_request", ["partner_id"], schema=SCHEMA)
    op.create_table(
        "fund_request_move",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("from_stage", sa.String(30)),
        sa.Column("to_stage", sa.String(30), nullable=False),
        sa.Column("moved_by", sa.Text),
        _ts("moved_at"),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="fund_request_move_pkey"),
        sa.ForeignKeyConstraint(["request_id"], [f"{SCHEMA}.fund_request.id"], ondelete="CASCADE",
                                name="fund_request_move_request_id_fkey"),
        schema=SCHEMA,
    )
    op.create_index("fund_request_move_request_id_idx", "fund_request_move", ["request_id"], schema=SCHEMA)
    op.create_table(
        "fund_milestone",
        sa.Column("id", sa.Uuid, nullable=False),
        sa.Column("request_id", sa.Uuid, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("claim_due_date", sa.Date, nullable=False),
        sa.Column("claim_status", sa.String(20), nullable=False),
        sa.Column("received", MONEY, nullable=False),
        sa.Column("claim_reference", sa.Text),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="fund_milestone_pkey"),
        sa.ForeignKeyConstraint(["request_id"], [f"{SCHEMA}.fund_request.id"], ondelete="CASCADE",
                                name="fund_milestone_request_id_fkey"),
        sa.CheckConstraint("amount >= 0 AND received >= 0 AND received <= amount", name="fund_milestone_amounts_check"),
        schema=SCHEMA,
    )
    op.create_index("fund_milestone_request_id_idx", "fund_milestone", ["request_id"], schema=SCHEMA)
    op.create_table(
        "deadline",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        _ts("due_at"),
        sa.Column("regarding", sa.String(30), nullable=False),
        sa.Column("regarding_id", sa.Uuid, nullable=False),
        sa.Column("link", sa.Text, nullable=False),
        sa.Column("owner", sa.Text),
        sa.Column("amount_at_stake", MONEY),
        sa.Column("currency", sa.String(3)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key", name="deadline_pkey"),
        schema=SCHEMA,
    )
    op.create_index("deadline_regarding_id_idx", "deadline", ["regarding_id"], schema=SCHEMA)
    for column in (sa.Column("hyperscaler", sa.Text), sa.Column("deal_model", sa.Text), sa.Column("pipeline", sa.Text),
                   sa.Column("external_id", sa.Text), _ts("launched_at", True)):
        op.add_column("pipeline_deal", column, schema=SCHEMA)
    # Goals count launches and created co-sell deals per hyperscaler in a period; ROI finds ACE ids.
    op.create_index("pipeline_deal_launch_idx", "pipeline_deal", ["hyperscaler", "launched_at"], schema=SCHEMA)
    op.create_index("pipeline_deal_created_idx", "pipeline_deal", ["hyperscaler", "created_at"], schema=SCHEMA)
    op.create_index("pipeline_deal_external_id_idx", "pipeline_deal", ["external_id"], schema=SCHEMA)


def downgrade() -> None:
    for index in ("pipeline_deal_launch_idx", "pipeline_deal_created_idx", "pipeline_deal_external_id_idx"):
        op.drop_index(index, "pipeline_deal", schema=SCHEMA)
    for column in ("hyperscaler", "deal_model", "pipeline", "external_id", "launched_at"):
        op.drop_column("pipeline_deal", column, schema=SCHEMA)
    for table in ("deadline", "fund_milestone", "fund_request_move", "fund_request",
                  "funding_program"):
        op.drop_table(table, schema=SCHEMA)
