"""The relationships migrations go down to nothing and up again (static and reversible)."""

from __future__ import annotations

import asyncio

import asyncpg

from runtime import migrations
from runtime.db import plain_dsn
from runtime.testing import platform_database, unique


async def test_downgrade_to_base_and_upgrade_again(servers):
    urls = await platform_database(servers.admin_url, unique("mig_"))
    url = urls["relationships"]
    await asyncio.to_thread(migrations.downgrade, "relationships", url, "base")
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        left = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'relationships'")
        assert [r["tablename"] for r in left] == ["alembic_version"]
        await asyncio.to_thread(migrations.upgrade, "relationships", url)
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'relationships'")}
        assert {"meeting", "weekly_update", "update_line", "update_revision", "task", "task_carry", "pipeline_deal",
                "pipeline_deal_change", "outbox", "inbox"} <= tables
    finally:
        await conn.close()
