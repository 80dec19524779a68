"""runtime.db: the settings every service's connections carry, and batched statements."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable

from runtime import db
from runtime.db import ArrayRows, create_engine, execute_many, session_factory
from runtime.testing import eventually, unique


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


def _array_table(name: str) -> Table:
    return Table(name, MetaData(), Column("id", BigInteger, Identity(), primary_key=True),
                 Column("key", Uuid, nullable=False, unique=True), Column("name", String(5), nullable=False),
                 Column("note", Text), Column("amount", Numeric(10, 2)), Column("doc", JSONB),
                 Column("at", DateTime(timezone=True)), Column("day", Date), Column("flag", Boolean))


_ARRAY_COLUMNS = ("key", "name", "note", "amount", "doc", "at", "day", "flag")


def _array_row(name: str, **values: Any) -> dict[str, Any]:
    return {"key": uuid.uuid4(), "name": name, "note": None, "amount": None, "doc": None, "at": None, "day": None,
            "flag": None, **values}


class TestArrayRows:
    async def test_an_empty_batch_runs_no_statement(self, platform_db: dict[str, str]) -> None:
        # The table does not exist: any statement run would fail.
        rows = ArrayRows(_array_table(unique("missing_")), _ARRAY_COLUMNS, key="key")
        engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
        try:
            async with session_factory(engine)() as session, session.begin():
                await rows.insert(session, [])
                await rows.update(session, [])
        finally:
            await engine.dispose()

    async def test_rows_go_in_in_order_with_their_values_and_nulls(self, platform_db: dict[str, str]) -> None:
        table = _array_table(unique("arrays_"))
        rows = ArrayRows(table, _ARRAY_COLUMNS, key="key")
        at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
        batch = [_array_row("c", note="n", amount=Decimal("12.34"), doc={"a": [1, "x"], "b": None}, at=at,
                            day=date(2026, 1, 2), flag=True),
                 _array_row("a"),  # every optional column NULL, JSON included
                 _array_row("b", doc={}, flag=False, amount=Decimal("0.00"))]
        engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
        try:
            async with session_factory(engine)() as session, session.begin():
                await session.execute(text(_create_temp(table)))
                await rows.insert(session, batch)
                got = (await session.execute(text(
                    f"SELECT {', '.join(_ARRAY_COLUMNS)}, doc IS NULL AS doc_is_null FROM {table.name} ORDER BY id"
                ))).all()
                assert [r.name for r in got] == ["c", "a", "b"]  # identity numbered in the batch's order
                first, empty, last = (dict(r._mapping) for r in got)
                assert first == {**batch[0], "doc_is_null": False}
                assert empty == {**batch[1], "doc_is_null": True}  # SQL NULL, not JSON 'null'
                assert last == {**batch[2], "doc_is_null": False}
        finally:
            await engine.dispose()

    async def test_a_too_long_value_or_a_duplicate_key_fails_the_whole_batch(self, platform_db: dict[str, str]
                                                                             ) -> None:
        """As the row-by-row insert did: a value too long for varchar(5) is refused, not truncated (as a cast
        to varchar(5)[] would), and a key given twice breaks its unique constraint."""
        table = _array_table(unique("arrays_"))
        rows = ArrayRows(table, _ARRAY_COLUMNS, key="key")
        twice = uuid.uuid4()
        engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
        try:
            async with engine.begin() as conn:  # a temp table lives as long as the pool's one connection
                await conn.execute(text(_create_temp(table)))
            for batch, error in (([_array_row("ok"), _array_row("toolong")], "value too long"),
                                 ([_array_row("a", key=twice), _array_row("b", key=twice)], "duplicate key")):
                async with session_factory(engine)() as session:
                    with pytest.raises(DBAPIError, match=error):
                        async with session.begin():
                            await rows.insert(session, batch)
                    assert await session.scalar(text(f"SELECT count(*) FROM {table.name}")) == 0
        finally:
            await engine.dispose()

    async def test_an_update_sets_the_given_rows_only(self, platform_db: dict[str, str]) -> None:
        table = _array_table(unique("arrays_"))
        rows = ArrayRows(table, _ARRAY_COLUMNS, key="key")
        batch = [_array_row(n, note=f"note {n}", amount=Decimal(i), doc={"n": n}, flag=True)
                 for i, n in enumerate("abc")]
        engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
        try:
            async with session_factory(engine)() as session, session.begin():
                await session.execute(text(_create_temp(table)))
                await rows.insert(session, batch)
                await rows.update(session, [_array_row("A", key=batch[0]["key"]),  # NULLs over values
                                            {**batch[2], "name": "C", "doc": {"n": "C"}}])
                got = {r.key: dict(r._mapping) for r in await session.execute(
                    text(f"SELECT {', '.join(_ARRAY_COLUMNS)} FROM {table.name}"))}
                assert got[batch[0]["key"]] == _array_row("A", key=batch[0]["key"])
                assert got[batch[1]["key"]] == batch[1]
                assert got[batch[2]["key"]] == {**batch[2], "name": "C", "doc": {"n": "C"}}
        finally:
            await engine.dispose()


def _create_temp(table: Table) -> str:
    return str(CreateTable(table).compile(dialect=postgresql.dialect())).replace("CREATE TABLE", "CREATE TEMP TABLE")


async def test_statements_on_the_driver_connection_have_spans_of_their_own(platform_db: dict[str, str]) -> None:
    """The hot paths run statements on the asyncpg connection itself, which SQLAlchemy's instrumentation
    never sees: each still gets a span, child of the span it ran in, with its text but no parameters."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    tracer = provider.get_tracer("test")
    engine = create_engine(platform_db["pipeline"], pool_size=1, trace_sql=False)
    db.trace_driver_statements(engine, tracer)
    try:
        with tracer.start_as_current_span("handler") as handler:
            async with db.driver_connection(engine) as lent:
                assert await lent.driver.fetchval("SELECT $1::text", "s3cret-value") == "s3cret-value"
                with pytest.raises(asyncpg.UndefinedTableError):
                    await lent.driver.execute("DELETE FROM no_such_table")
            await eventually(lambda: len(exported.get_finished_spans()) >= 2, "the statements' spans")
        spans = {s.name: s for s in exported.get_finished_spans() if s.name != "handler"}
        select, delete = spans["SELECT"], spans["DELETE"]
        assert select.attributes["db.statement"] == "SELECT $1::text"
        assert select.attributes["db.system"] == "postgresql" and select.attributes["db.name"]
        assert "s3cret-value" not in str(dict(select.attributes))
        assert select.parent is not None and select.parent.span_id == handler.get_span_context().span_id
        assert select.start_time <= select.end_time
        assert not delete.status.is_ok and delete.events[0].name == "exception"
    finally:
        await engine.dispose()
