"""The partner users (gateway_auth_0003) were written beside the one-history merge (gateway_0002); they meet
here. From now on a gateway migration chains on the one head (tests/test_migrations.py checks it).

Revision ID: gateway_0003
Revises: gateway_0002, gateway_auth_0003
Create Date: 2026-12-01
"""

revision = "gateway_0003"
down_revision = ("gateway_0002", "gateway_auth_0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
