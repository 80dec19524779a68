"""The commissions forecast weighs an open deal by its stage's probability in the stage set in force
(contracts/pipeline/stages.py, the one rule the gateway's forecast follows too), not by the
probability frozen in the deal's last event: the service keeps the pipeline's stage sets from their
events, and each opportunity's pipeline and stage key. Rows stored before this revision have no stage
key and keep the carried probability until their next event.

Revision ID: commissions_0006
Revises: commissions_0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "commissions_0006"
down_revision = "commissions_0005"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


def upgrade() -> None:
    op.add_column("opportunity", sa.Column("pipeline", sa.String(40)), schema=SCHEMA)
    op.add_column("opportunity", sa.Column("stage_key", sa.String(40)), schema=SCHEMA)
    op.create_table(
        "stage_set",
        sa.Column("key", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("key", name="stage_set_pkey"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("stage_set", schema=SCHEMA)
    op.drop_column("opportunity", "stage_key", schema=SCHEMA)
    op.drop_column("opportunity", "pipeline", schema=SCHEMA)
