"""One schema and one login role per service: a service's role cannot read another's schema."""

from __future__ import annotations

import asyncpg
import pytest

from runtime.db import plain_dsn
from runtime.topology import DATABASE_OWNERS


@pytest.mark.parametrize("owner", DATABASE_OWNERS)
async def test_a_role_reads_its_own_schema_and_no_other(platform_db, owner):
    conn = await asyncpg.connect(plain_dsn(platform_db[owner]))
    try:
        assert await conn.fetchval("SELECT count(*) FROM outbox") >= 0
        assert await conn.fetchval(f"SELECT version_num FROM {owner}.alembic_version") is not None
        for other in DATABASE_OWNERS:
            if other == owner:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {other}.outbox LIMIT 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.sneaky (id int)")
    finally:
        await conn.close()


async def test_roles_cannot_grant_themselves_more(platform_db):
    conn = await asyncpg.connect(plain_dsn(platform_db["pipeline"]))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("ALTER ROLE pipeline SUPERUSER")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE ROLE intruder LOGIN")
    finally:
        await conn.close()


async def test_migrations_go_down_and_up_again(servers):
    from runtime import migrations
    from runtime.testing import platform_database, unique

    urls = await platform_database(servers.admin_url, unique("po_mig_"))
    for owner in DATABASE_OWNERS:
        await __import__("asyncio").to_thread(migrations.downgrade, owner, urls[owner], "base")
        await migrations.upgrade_async(owner, urls[owner])
