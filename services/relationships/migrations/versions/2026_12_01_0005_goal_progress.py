"""A goal keeps the progress it last published, so a pipeline event that changes it publishes the goal
again (the gateway's dashboard reads goals from those events).

Revision ID: relationships_0005
Revises: relationships_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "relationships_0005"
down_revision = "relationships_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("goal", sa.Column("progress", sa.Numeric(16, 2)), schema="relationships")


def downgrade() -> None:
    op.drop_column("goal", "progress", schema="relationships")
