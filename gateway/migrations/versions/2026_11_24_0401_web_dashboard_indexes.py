"""Indexes the web pages' own read-model queries need: the dashboard's top movers and each member's
"moved this week" look for opportunities by the time they entered their stage, open or closed (the
pipeline branch's index covers open deals only). Without it both scan every opportunity.

Revision ID: gateway_web_0001
Revises: gateway_0001
Create Date: 2026-11-24
"""

from alembic import op

revision = "gateway_web_0001"
down_revision = "gateway_0001"
branch_labels = ("web",)
depends_on = "gateway_pipeline_0001"

SCHEMA = "gateway"


def upgrade() -> None:
    # Covering: a week of moves is read from the index alone, then sorted by amount or counted per owner.
    op.create_index("pipeline_opportunity_stage_entered_idx", "pipeline_opportunity", ["stage_entered_at"],
                    schema=SCHEMA, postgresql_include=["created_at", "amount", "owner", "id"])


def downgrade() -> None:
    op.drop_index("pipeline_opportunity_stage_entered_idx", "pipeline_opportunity", schema=SCHEMA)
