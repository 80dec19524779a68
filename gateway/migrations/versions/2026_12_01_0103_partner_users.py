"""Partner users: a user of the `partner` role belongs to one partner organisation (and only they do).

Revision ID: gateway_auth_0003
Revises: gateway_auth_0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_auth_0003"
down_revision = "gateway_auth_0002"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("app_user", sa.Column("partner_id", sa.Uuid), schema=SCHEMA)
    op.drop_constraint("app_user_role_check", "app_user", schema=SCHEMA)
    op.create_check_constraint("app_user_role_check", "app_user",
                               "role IN ('admin', 'manager', 'member', 'viewer', 'partner')", schema=SCHEMA)
    op.create_check_constraint("app_user_partner_bound_check", "app_user",
                               "(role = 'partner') = (partner_id IS NOT NULL)", schema=SCHEMA)


def downgrade() -> None:
    op.drop_constraint("app_user_partner_bound_check", "app_user", schema=SCHEMA)
    op.execute(f"DELETE FROM {SCHEMA}.app_user WHERE role = 'partner'")
    op.drop_constraint("app_user_role_check", "app_user", schema=SCHEMA)
    op.create_check_constraint("app_user_role_check", "app_user", "role IN ('admin', 'manager', 'member', 'viewer')",
                               schema=SCHEMA)
    op.drop_column("app_user", "partner_id", schema=SCHEMA)
