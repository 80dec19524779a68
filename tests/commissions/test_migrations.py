"""The commissions migrations go down to nothing and up again (static and reversible)."""

from __future__ import annotations

import asyncio

import asyncpg

from runtime import migrations
from runtime.db import plain_dsn
from runtime.testing import platform_database, unique


async def test_downgrade_to_base_and_upgrade_again(servers):
    urls = await platform_database(servers.admin_url, unique("mig_"))
    url = urls["commissions"]
    await asyncio.to_thread(migrations.downgrade, "commissions", url, "base")
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        left = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'commissions'")
        assert [r["tablename"] for r in left] == ["alembic_version"]
        await asyncio.to_thread(migrations.upgrade, "commissions", url)
        tables = {r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'commissions'")}
        assert {"agreement", "agreement_version", "agreement_audit", "revenue_event", "ledger_entry", "payment",
                "outbox", "inbox"} <= tables
        # Every index on the ledger is paid for by every entry written; each has a reader (see the migrations).
        indexes = {r["indexname"] for r in await conn.fetch(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'commissions' AND tablename = 'ledger_entry'")}
        assert indexes == {"ledger_entry_pkey", "ledger_entry_line_key", "ledger_entry_reverses_idx",
                           "ledger_entry_customer_idx", "ledger_entry_partner_idx", "ledger_entry_revenue_key_idx",
                           "ledger_entry_adjusts_idx"}
    finally:
        await conn.close()
