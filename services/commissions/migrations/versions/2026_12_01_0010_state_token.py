"""A token on each agreement's fold state naming the write that left it and its customers' state as they are.
The ledger's fast path sets a new random one with every write of an agreement's fold and customer state and
keeps, in the process, the customers' state it wrote; when the next batch finds its own token on the state row
it has locked, nothing was written since (by another replica, a refold, a rolled-back transaction), so it need
not read those customers again. Any other write clears the token (docs/benchmarks.md).

Revision ID: commissions_0010
Revises: commissions_0009
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "commissions_0010"
down_revision = "commissions_0009"
branch_labels = None
depends_on = None

SCHEMA = "commissions"


def upgrade() -> None:
    op.add_column("agreement_state", sa.Column("state_token", sa.Uuid()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("agreement_state", "state_token", schema=SCHEMA)
