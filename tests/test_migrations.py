"""Every owner's migrations build what its models declare (`alembic check`), and go down to nothing and up
again to the very same schema: columns with their types and defaults, indexes, constraints, triggers,
functions, sequences and types, as Postgres prints them (static and reversible migrations, whoever owns
the schema).

Run only the model check: `.venv/bin/python -m pytest -p no:xdist tests/test_migrations.py -k models -q`."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from runtime import migrations
from runtime.db import MONEY, plain_dsn
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
async def test_every_money_column_has_the_one_precision(servers, owner: str) -> None:
    """Money is numeric(20,2) in every schema (runtime.db.MONEY from contracts/money.py): a column with two
    decimals and room for more than a score (numeric(4,2), numeric(5,2)) is money."""
    urls = await platform_database(servers.admin_url, unique("money_"))
    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        rows = await conn.fetch(
            """SELECT table_name || '.' || column_name || ' numeric(' || numeric_precision || ',2)'
                                   FROM information_schema.columns WHERE table_schema = $1 AND data_type = 'numeric'
                                   AND numeric_scale = 2 AND numeric_precision > 5""",
            owner,
        )
    finally:
        await conn.close()
    other = sorted(r[0] for r in rows if not r[0].endswith(f"numeric({MONEY.precision},{MONEY.scale})"))
    assert not other, f"{owner}: money columns not numeric({MONEY.precision},{MONEY.scale}): {other}"


async def test_a_widened_money_column_keeps_its_values_down_and_up(servers) -> None:
    """commissions_0007 widens the money columns from numeric(18,2): the largest amount the old column holds
    survives the migration up, and down again."""
    urls = await platform_database(servers.admin_url, unique("money_"))
    url = urls["commissions"]
    largest = Decimal("9999999999999999.99")  # numeric(18,2)'s biggest value
    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        await asyncio.to_thread(migrations.downgrade, "commissions", url, "commissions_0006")
        await conn.execute(
            """INSERT INTO commissions.payment (id, partner_id, direction, currency, amount, paid_on,
                              reference) VALUES ($1, $1, 'payable', 'USD', $2, '2026-12-01', 'r')""",
            uuid.uuid4(),
            largest,
        )
        await asyncio.to_thread(migrations.upgrade, "commissions", url)
        assert await conn.fetchval("SELECT amount FROM commissions.payment") == largest
        assert (
            await conn.fetchval("""SELECT numeric_precision FROM information_schema.columns
                                      WHERE table_schema = 'commissions' AND table_name = 'payment'
                                      AND column_name = 'amount'""")
            == MONEY.precision
        )
        await asyncio.to_thread(migrations.downgrade, "commissions", url, "commissions_0006")
        assert await conn.fetchval("SELECT amount FROM commissions.payment") == largest
    finally:
        await conn.close()


@pytest.mark.parametrize("owner", DATABASE_OWNERS)
def test_each_owner_has_one_linear_history(owner: str) -> None:
    script = ScriptDirectory.from_config(migrations.alembic_config(owner, ""))
    heads = script.get_heads()
    assert len(heads) == 1, f"{owner} has heads {heads}: chain a new migration on the current head"
