"""The stage an opportunity was in before its last move, kept from the pipeline's events, so the
dashboard's top movers read "from → to" from the read model instead of asking the pipeline service.
Rows written before this revision have none until their next move (or a replay of the stream).

Revision ID: gateway_pipeline_0004
Revises: gateway_pipeline_0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_pipeline_0004"
down_revision = "gateway_pipeline_0003"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("pipeline_opportunity", sa.Column("previous_stage", sa.String(40)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("pipeline_opportunity", "previous_stage", schema=SCHEMA)
