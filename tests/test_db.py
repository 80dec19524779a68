"""runtime.db: the settings every service's connections carry, and batched statements."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from runtime import db
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


async def test_a_pooled_connection_closed_by_the_server_while_idle_is_replaced_not_handed_out(
        platform_db: dict[str, str], monkeypatch) -> None:
    """Connections are checked on checkout only once idle for PING_WHEN_IDLE_SECONDS (not on every
    checkout): one the server closed meanwhile (a restart, an idle timeout) is replaced unseen."""
    engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
    admin = create_engine(platform_db["admin"], pool_size=1, trace_sql=False)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        monkeypatch.setattr(db, "PING_WHEN_IDLE_SECONDS", 0.0)
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
        # In steady use it is not checked again: the same connection comes back.
        monkeypatch.setattr(db, "PING_WHEN_IDLE_SECONDS", 3600.0)
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) == second
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_a_driver_connection_the_server_closed_in_steady_use_fails_once_then_is_replaced(
        platform_db: dict[str, str], monkeypatch) -> None:
    """runtime.db.driver_connection: a statement on a connection the server closed (a restart) fails
    with SQLAlchemy's DBAPIError (the gateway's 503), as one through SQLAlchemy would, and the pool
    hands out a new connection next, not the dead one again."""
    engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
    admin = create_engine(platform_db["admin"], pool_size=1, trace_sql=False)
    monkeypatch.setattr(db, "PING_WHEN_IDLE_SECONDS", 3600.0)  # in steady use: no check on checkout
    try:
        async with db.driver_connection(engine) as conn:
            first = await conn.driver.fetchval("SELECT pg_backend_pid()")
        async with admin.connect() as conn:
            assert await conn.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        with pytest.raises(DBAPIError) as failed:
            async with db.driver_connection(engine) as conn:
                await conn.driver.fetchval("SELECT pg_backend_pid()")
        assert failed.value.connection_invalidated
        async with db.driver_connection(engine) as conn:
            assert await conn.driver.fetchval("SELECT pg_backend_pid()") != first
        # An error that is not the connection's is the caller's, and the connection stays pooled.
        with pytest.raises(asyncpg.exceptions.UndefinedTableError):
            async with db.driver_connection(engine) as conn:
                second = await conn.driver.fetchval("SELECT pg_backend_pid()")
                await conn.driver.fetchval("SELECT * FROM no_such_table")
        async with db.driver_connection(engine) as conn:
            assert await conn.driver.fetchval("SELECT pg_backend_pid()") == second
    finally:
        await engine.dispose()
        await admin.dispose()
