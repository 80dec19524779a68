"""The notifications migrations go down to nothing and up again (static and reversible)."""

from __future__ import annotations

import asyncio

import asyncpg

from runtime import migrations
from runtime.db import plain_dsn
from runtime.testing import platform_database, unique


async def test_downgrade_to_base_and_upgrade_again(servers):
    urls = await platform_database(servers.admin_url, unique("mig_"))
    url = urls["notifications"]
    await asyncio.to_thread(migrations.downgrade, "notifications", url, "base")
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        left = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'notifications'")
        assert [r["tablename"] for r in left] == ["alembic_version"]
        await asyncio.to_thread(migrations.upgrade, "notifications", url)
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'notifications'")}
        assert tables == {"alembic_version", "outbox", "inbox", "person", "preference", "deal", "pipeline_settings",
                          "alert", "delivery", "deadline", "sync_health"}
    finally:
        await conn.close()
