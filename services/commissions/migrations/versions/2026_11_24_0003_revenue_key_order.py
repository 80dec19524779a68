"""Revenue events' natural key led by `ref`, so a lookup by refs is an index search even before the
table's statistics catch up with a fast-growing table (the planner otherwise scans every invoice); and
one index fewer on the ledger (entries by status were never looked up without their partner).

Revision ID: commissions_0003
Revises: commissions_0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "commissions_0003"
down_revision = "commissions_0002"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


def upgrade() -> None:
    op.drop_constraint("revenue_event_kind_key", "revenue_event", schema=SCHEMA)
    op.create_unique_constraint("revenue_event_ref_key", "revenue_event", ["ref", "kind", "scope"], schema=SCHEMA)
    op.drop_index("ledger_entry_open_idx", "ledger_entry", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("ledger_entry_open_idx", "ledger_entry", ["status"], schema=SCHEMA,
                    postgresql_where=sa.text("status <> 'paid'"))
    op.drop_constraint("revenue_event_ref_key", "revenue_event", schema=SCHEMA)
    op.create_unique_constraint("revenue_event_kind_key", "revenue_event", ["kind", "ref", "scope"], schema=SCHEMA)
