"""Accounts hardened: sessions that end when idle, API tokens with an expiry, a creator (revoked with
them) and a unique name, single-use password reset links, and sign-in attempts found by address too.

Revision ID: gateway_auth_0002
Revises: gateway_auth_0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gateway_auth_0002"
down_revision = "gateway_auth_0001"
branch_labels = None
depends_on = None

SCHEMA = "gateway"


def upgrade() -> None:
    op.add_column("user_session", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False,
                                            server_default=sa.func.now()), schema=SCHEMA)
    op.add_column("api_token", sa.Column("expires_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("api_token", sa.Column("created_by_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.app_user.id",
                                                                                 ondelete="SET NULL")), schema=SCHEMA)
    # Tokens made before expiries existed get a year from their creation, like a new one by default.
    op.execute(f"UPDATE {SCHEMA}.api_token SET expires_at = created_at + interval '365 days'")
    op.alter_column("api_token", "expires_at", nullable=False, schema=SCHEMA)
    op.execute(f"""UPDATE {SCHEMA}.api_token t SET created_by_id = u.id FROM {SCHEMA}.app_user u
                   WHERE lower(u.email) = lower(t.created_by)""")
    # Live tokens get unique names; older duplicates keep theirs with the id appended.
    op.execute(f"""UPDATE {SCHEMA}.api_token t SET name = t.name || ' (' || t.id || ')'
                   WHERE t.revoked_at IS NULL AND EXISTS (
                       SELECT 1 FROM {SCHEMA}.api_token o WHERE o.revoked_at IS NULL AND o.id <> t.id
                       AND lower(o.name) = lower(t.name) AND o.created_at < t.created_at)""")
    op.create_index("api_token_live_name_key", "api_token", [sa.text("lower(name)")], unique=True, schema=SCHEMA,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "password_reset",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("user_id", sa.Uuid, sa.ForeignKey(f"{SCHEMA}.app_user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )
    op.execute(f"UPDATE {SCHEMA}.signin_attempt SET email = lower(email)")
    op.create_index("signin_attempt_client_at_idx", "signin_attempt", ["client", "at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("signin_attempt_client_at_idx", "signin_attempt", schema=SCHEMA)
    op.drop_table("password_reset", schema=SCHEMA)
    op.drop_index("api_token_live_name_key", "api_token", schema=SCHEMA)
    op.drop_column("api_token", "created_by_id", schema=SCHEMA)
    op.drop_column("api_token", "expires_at", schema=SCHEMA)
    op.drop_column("user_session", "last_seen_at", schema=SCHEMA)
