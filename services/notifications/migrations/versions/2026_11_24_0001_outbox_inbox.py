"""The notifications schema's outbox and inbox.

Revision ID: notifications_0001
Revises:
Create Date: 2026-11-24
"""

from runtime.migrations import create_outbox_and_inbox, drop_outbox_and_inbox

revision = "notifications_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_outbox_and_inbox("notifications")


def downgrade() -> None:
    drop_outbox_and_inbox("notifications")
