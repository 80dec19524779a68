"""A won deal's revenue fact keeps the pipeline it was won in, so a SPIF can be for deals of some
pipelines only (docs/commissions.md). Facts stored before this revision have none: a SPIF limited to
pipelines does not count them.

Revision ID: commissions_0008
Revises: commissions_0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "commissions_0008"
down_revision = "commissions_0007"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


def upgrade() -> None:
    op.add_column("revenue_event", sa.Column("pipeline", sa.String(40)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("revenue_event", "pipeline", schema=SCHEMA)
