"""Full-text indexes for global search (gateway/web/search.py): partners' and deals' names as
`to_tsvector('simple', name)`, so a prefix search over a million deals reads the index, not the table.

Revision ID: gateway_web_0002
Revises: gateway_web_0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "gateway_web_0002"
down_revision = "gateway_web_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.execute(f"CREATE INDEX pipeline_partner_name_search_idx ON {SCHEMA}.pipeline_partner "
               "USING gin (to_tsvector('simple'::regconfig, name))")
    op.execute(f"CREATE INDEX pipeline_opportunity_name_search_idx ON {SCHEMA}.pipeline_opportunity "
               "USING gin (to_tsvector('simple'::regconfig, name))")


def downgrade() -> None:
    op.drop_index("pipeline_opportunity_name_search_idx", "pipeline_opportunity", schema=SCHEMA)
    op.drop_index("pipeline_partner_name_search_idx", "pipeline_partner", schema=SCHEMA)
