"""One history from here on: the branches the gateway's features grew side by side (auth, pipeline,
commissions, web, week, funding) meet here, and every later migration chains on the one head.

Revision ID: gateway_0002
Revises: gateway_auth_0002, gateway_pipeline_0004, gateway_commissions_0001, gateway_web_0002,
    gateway_week_0001, gateway_funding_0001
Create Date: 2026-12-01
"""

revision = "gateway_0002"
down_revision = ("gateway_auth_0002", "gateway_pipeline_0004", "gateway_commissions_0001", "gateway_web_0002",
                 "gateway_week_0001", "gateway_funding_0001")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
