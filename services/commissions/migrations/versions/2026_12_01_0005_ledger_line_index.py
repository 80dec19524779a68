"""One index fewer on the ledger: `ledger_entry_line_idx` (agreement, line key over every entry) duplicated
the unique index of original entries per line except for adjustments, which are now found through the
entry they adjust (a partial index holding adjustments only, a small share of the ledger).

Revision ID: commissions_0005
Revises: commissions_0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "commissions_0005"
down_revision = "commissions_0004"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


def upgrade() -> None:
    op.create_index("ledger_entry_adjusts_idx", "ledger_entry", ["adjusts_entry_id"], schema=SCHEMA,
                    postgresql_where=sa.text("adjusts_entry_id IS NOT NULL"))
    op.drop_index("ledger_entry_line_idx", "ledger_entry", schema=SCHEMA)


def downgrade() -> None:
    op.create_index("ledger_entry_line_idx", "ledger_entry", ["agreement_id", "line_key"], schema=SCHEMA)
    op.drop_index("ledger_entry_adjusts_idx", "ledger_entry", schema=SCHEMA)
