"""Search finds deals by customer and external id as well as by name (issue 16): the opportunity read model
keeps `customer`, `external_id` and `search_text` (the three together, written with each snapshot), and the
full-text index covers `search_text`. Deals stored before this revision are found by name at once (the
upgrade copies it), by customer and external id after their next change or `partnerops rebuild-read-models`.

Revision ID: gateway_web_0003
Revises: gateway_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_web_0003"
down_revision = "gateway_0004"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("pipeline_opportunity", sa.Column("customer", sa.String(200)), schema=SCHEMA)
    op.add_column("pipeline_opportunity", sa.Column("external_id", sa.String(200)), schema=SCHEMA)
    op.add_column("pipeline_opportunity", sa.Column("search_text", sa.Text), schema=SCHEMA)
    op.execute(f"UPDATE {SCHEMA}.pipeline_opportunity SET search_text = name")
    op.drop_index("pipeline_opportunity_name_search_idx", "pipeline_opportunity", schema=SCHEMA)
    op.execute(f"CREATE INDEX pipeline_opportunity_search_idx ON {SCHEMA}.pipeline_opportunity "
               "USING gin (to_tsvector('simple'::regconfig, search_text))")


def downgrade() -> None:
    op.drop_index("pipeline_opportunity_search_idx", "pipeline_opportunity", schema=SCHEMA)
    op.execute(f"CREATE INDEX pipeline_opportunity_name_search_idx ON {SCHEMA}.pipeline_opportunity "
               "USING gin (to_tsvector('simple'::regconfig, name))")
    op.drop_column("pipeline_opportunity", "search_text", schema=SCHEMA)
    op.drop_column("pipeline_opportunity", "external_id", schema=SCHEMA)
    op.drop_column("pipeline_opportunity", "customer", schema=SCHEMA)
