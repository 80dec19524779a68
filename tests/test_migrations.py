"""Every owner's migrations build what its models declare (`alembic check`), and go down to nothing and up
again to the very same schema: columns with their types and defaults, indexes, constraints, triggers,
functions, sequences and types, as Postgres prints them (static and reversible migrations, whoever owns
the schema).

Run only the model check: `.venv/bin/python -m pytest -p no:xdist tests/test_migrations.py -k models -q`."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from runtime import migrations
from runtime.db import plain_dsn
from runtime.testing import platform_database, unique
from runtime.topology import DATABASE_OWNERS

# What a schema is made of, each as text Postgres itself prints, so two schemas compare as sets of lines.
SCHEMA_PARTS = {
    "columns": """SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' '
                         || coalesce(column_default, '') FROM information_schema.columns WHERE table_schema = $1""",
    "indexes": "SELECT indexdef FROM pg_indexes WHERE schemaname = $1",
    "constraints": """SELECT c.conrelid::regclass || ' ' || c.conname || ' ' || pg_get_constraintdef(c.oid)
                      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1""",
    "triggers": """SELECT pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
                   JOIN pg_namespace n ON n.oid = r.relnamespace WHERE n.nspname = $1 AND NOT t.tgisinternal""",
    "functions": """SELECT p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || md5(p.prosrc)
                    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1""",
    "sequences": "SELECT sequencename FROM pg_sequences WHERE schemaname = $1",
    "types": """SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0""",
}


async def schema_of(conn: asyncpg.Connection, owner: str) -> dict[str, set[str]]:
    return {part: {r[0] for r in await conn.fetch(sql, owner)} for part, sql in SCHEMA_PARTS.items()}


@pytest.mark.parametrize("owner", DATABASE_OWNERS)
async def test_the_models_declare_what_the_migrations_build(servers, owner: str) -> None:
    """Alembic's autogenerate compares the owner's models (its env.py's target_metadata) with a freshly
    migrated schema: a difference means a model changed without a migration, or a migration without its
    model. Fix the side that is wrong (`remove_*`/"in the database, not in the models": usually the model
    lacks what the migration made)."""
    urls = await platform_database(servers.admin_url, unique("chk_"))
    differences = "\n".join(await asyncio.to_thread(migrations.check, owner, urls[owner]))
    assert not differences, f"{owner}: the models and the migrations differ:\n{differences}"


@pytest.mark.parametrize("owner", DATABASE_OWNERS)
async def test_down_to_nothing_and_up_again_gives_the_same_schema(servers, owner: str) -> None:
    urls = await platform_database(servers.admin_url, unique("mig_"))
    url = urls[owner]
    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        before = await schema_of(conn, owner)
        assert before["columns"], f"{owner}: no tables after the migrations"
        await asyncio.to_thread(migrations.downgrade, owner, url, "base")
        left = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", owner)}
        assert left == {"alembic_version"}, f"{owner}: the downgrade left {left - {'alembic_version'}}"
        remains = await schema_of(conn, owner)
        for part in ("functions", "sequences", "types", "triggers"):
            assert not remains[part], f"{owner}: the downgrade left {part} {sorted(remains[part])}"
        await asyncio.to_thread(migrations.upgrade, owner, url)
        after = await schema_of(conn, owner)
    finally:
        await conn.close()
    for part in SCHEMA_PARTS:
        assert after[part] == before[part], (
            f"{owner} {part}: missing after down and up {sorted(before[part] - after[part])}, "
            f"new {sorted(after[part] - before[part])}"
        )


@pytest.mark.parametrize("owner", DATABASE_OWNERS)
def test_each_owner_has_one_linear_history(owner: str) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(owner, ""))
    heads = script.get_heads()
    assert len(heads) == 1, f"{owner} has heads {heads}: chain a new migration on the current head"
