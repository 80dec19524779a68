"""runtime.db: the settings every service's connections carry, and batched statements."""

from __future__ import annotations

from sqlalchemy import text

from runtime.db import create_engine, execute_many, session_factory
from runtime.testing import unique


async def test_every_connection_plans_per_execution_in_utc(platform_db: dict[str, str]) -> None:
    """A prepared statement run many times on a fresh, empty table is planned afresh each time: no
    generic plan from the statistics of an empty table outlives the moment it was made."""
    engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
    table = unique("plans_")
    try:
        async with engine.begin() as conn:
            assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
            assert await conn.scalar(text("SHOW TimeZone")) == "UTC"
            await conn.execute(text(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY)"))
            for i in range(12):  # past the five custom plans after which Postgres may go generic
                await conn.execute(text(f"SELECT id FROM {table} WHERE id = ANY(:ids)"), {"ids": [i]})
            plans = (await conn.execute(text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                f"WHERE statement LIKE '%FROM {table} WHERE id = ANY%' "
                "AND statement NOT LIKE '%pg_prepared_statements%'"))).one()
            assert plans.generic_plans == 0 and plans.custom_plans >= 12
    finally:
        await engine.dispose()


async def test_execute_many_runs_nothing_for_an_empty_batch(platform_db: dict[str, str]) -> None:
    engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
    table = unique("many_")
    insert = text(f"INSERT INTO {table} (id, name) VALUES (:id, :name)")
    try:
        async with session_factory(engine)() as session, session.begin():
            await session.execute(text(f"CREATE TEMP TABLE {table} (id int PRIMARY KEY, name text NOT NULL)"))
            await execute_many(session, insert, [])
            await execute_many(session, insert, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
            assert (await session.execute(text(f"SELECT id, name FROM {table} ORDER BY id"))).all() == [
                (1, "a"), (2, "b")]
    finally:
        await engine.dispose()
