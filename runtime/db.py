"""Database engine, sessions and the constraint naming convention every schema uses."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from opentelemetry import trace
from sqlalchemy import JSON, Column, Executable, MetaData, Numeric, String, Table, TextClause, event, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from contracts.money import COLUMN_DIGITS, SCALE
from runtime import telemetry

NAMING_CONVENTION = {
    # Index names are per schema: the table's name is enough (and is what the migrations named them).
    "ix": "%(table_name)s_%(column_0_name)s_idx",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


# Every money column in every schema: one precision and scale (contracts/money.py says why this wide).
MONEY = Numeric(COLUMN_DIGITS, SCALE)


def make_metadata(schema: str) -> MetaData:
    return MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


# Sent in the start-up packet of every connection an engine opens (no extra round trip).
SESSION_SETTINGS: Mapping[str, str] = {
    # Every timestamp the platform stores or compares is UTC.
    "TimeZone": "UTC",
    # The driver prepares every statement, and after five runs Postgres may switch to a generic plan
    # made from the statistics of that moment: on a fresh database, the hot batch look-ups
    # (`= ANY(:ids)`, `IN (...)`) were planned on empty tables as sequential scans and stayed so
    # until autovacuum's first ANALYZE. A plan per execution uses the actual parameters, so a
    # fresh database ingests at full rate from the first second; planning these statements costs
    # well under a millisecond.
    "plan_cache_mode": "force_custom_plan",
}


def async_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use the asyncpg driver."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def plain_dsn(url: str) -> str:
    """The URL as asyncpg itself wants it (no SQLAlchemy driver suffix)."""
    u = make_url(url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


# A pooled connection idle for longer than this is checked before it is handed out (a Postgres
# restart meanwhile would have closed it); one in steady use is not. SQLAlchemy's pool_pre_ping checks
# every checkout, and for asyncpg that is three round trips (BEGIN, ";", ROLLBACK): on a busy machine
# each waits for a CPU, and they were a quarter of a consumer batch's round trips and most of a KPI
# read's (docs/benchmarks.md). A connection that died while in steady use fails its statement instead;
# SQLAlchemy then replaces every pooled connection, consumers wait the failure out, and a request
# gets a 503 it may retry.
PING_WHEN_IDLE_SECONDS = 2.0


def create_engine(url: str, *, pool_size: int = 10, trace_sql: bool | None = None) -> AsyncEngine:
    """Up to `pool_size` connections are kept open once opened, and half as many more may be opened for
    a burst (closed as soon as they are given back to a full pool, so size the pool for the process's
    steady concurrency: DATABASE_POOL_SIZE). `trace_sql`: a span per statement and connection; by
    default only when spans are recorded (unrecorded, they cost CPU on every statement for nothing)."""
    if trace_sql is None:
        trace_sql = telemetry.spans_recorded()
    engine = create_async_engine(async_url(url), pool_size=pool_size, max_overflow=max(pool_size // 2, 1),
                                 connect_args={"server_settings": dict(SESSION_SETTINGS)})
    _ping_when_idle(engine)
    if trace_sql:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, enable_commenter=False)
        trace_driver_statements(engine, telemetry.tracer(__name__))
    return engine


def trace_driver_statements(engine: AsyncEngine, tracer: trace.Tracer) -> None:
    """A span for each statement run on a connection's asyncpg connection itself (`driver_connection`,
    `session_driver`: the hot paths moved off SQLAlchemy), which SQLAlchemy's instrumentation does not
    see. asyncpg's query logger reports a statement once it has finished, with how long it took; the span
    is made then, with that start. asyncpg reports `fetch`/`execute` and the transaction's BEGIN/COMMIT;
    not its prepared statements, which are SQLAlchemy's own (spanned by its instrumentation), nor
    `executemany` or COPY. The statement's text is recorded, never its parameters."""

    def finished(query: asyncpg.connection.LoggedQuery) -> None:
        # Called on the loop's next turn in the context the statement ran in: the span has its parent.
        end = time.time_ns()
        words = query.query.split(None, 1)
        span = tracer.start_span(words[0].upper() if words else "SQL", kind=trace.SpanKind.CLIENT,
                                 start_time=end - int(query.elapsed * 1e9),
                                 attributes={"db.system": "postgresql", "db.statement": query.query,
                                             "db.name": str((query.conn_params and query.conn_params.database)
                                                            or "")})
        if query.exception is not None:
            span.record_exception(query.exception)
            span.set_status(trace.Status(trace.StatusCode.ERROR, type(query.exception).__name__))
        span.end(end_time=end)

    @event.listens_for(engine.sync_engine.pool, "connect")
    def connected(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.driver_connection.add_query_logger(finished)


def _ping_when_idle(engine: AsyncEngine) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def given_back(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def handed_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_WHEN_IDLE_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and hands out another (a fresh one if need be).
            raise DisconnectionError(f"pooled connection is gone: {exc!r}") from exc


@dataclass
class DriverConnection:
    """A pooled connection lent as its asyncpg connection (`driver`), outside any transaction."""

    pooled: AsyncConnection
    driver: asyncpg.Connection

    async def give_back(self) -> None:
        """Back to the pool before the `async with` ends (closing twice is harmless)."""
        await self.pooled.close()


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[DriverConnection]:
    """A pooled connection's asyncpg connection, for a hot path's few statements (each its own
    implicit transaction): SQLAlchemy's execution of a statement (a greenlet, its compiled-statement
    cache, the result's processing) costs several times what asyncpg's own does, which was a large
    share of an authenticated kept KPI read (docs/benchmarks.md).

    The pool's care is kept: a connection the server closed (a restart) fails its statement; it is
    then handed to SQLAlchemy to find out as it always does (every connection pooled before it is
    replaced) and the request gets SQLAlchemy's DBAPIError, a 503 it may retry, as a statement
    through SQLAlchemy would have given it."""
    async with engine.connect() as pooled:
        lent = DriverConnection(pooled, (await pooled.get_raw_connection()).driver_connection)
        try:
            yield lent
        except Exception:
            if pooled.closed or pooled.invalidated or not lent.driver.is_closed():
                raise
            await pooled.exec_driver_sql("SELECT 1")  # raises, having invalidated the pool
            raise


class DriverRow(asyncpg.Record):
    """A row read on the driver connection; its columns are attributes too, as on SQLAlchemy's rows."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def session_driver(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, inside the session's transaction (`driver_connection` lends
    one outside any). The commissions ledger's hot path runs its statements here: SQLAlchemy's
    per-statement work (building, compiling or cache-keying the statement, processing parameters and
    rows, a tracing span) cost more than several of those statements did in Postgres (docs/benchmarks.md,
    "Issue 8, the commissions ledger's hot path on the driver"). Traced as SQL by `trace_driver_statements`."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    conn: asyncpg.Connection = raw.driver_connection  # type: ignore[assignment]
    if not conn.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the session's transaction lazily, with its first statement:
        # open it here (BEGIN, as that statement would), or through a statement if the adapter changed.
        start = getattr(raw.dbapi_connection, "_start_transaction", None)
        await (start() if start is not None else session.execute(text("SELECT 1")))
        if not conn.is_in_transaction():
            raise RuntimeError("the session's transaction did not start on its driver connection")
    return conn


async def execute_many(session: AsyncSession, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `statement` for every row of a batch in one round trip, and not at all for an empty batch:
    given an empty list, `execute` runs the statement once without parameters, and a statement with
    bind parameters then fails ("A value is required for bind parameter ...")."""
    if rows:
        await session.execute(statement, list(rows))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _array_element(column: Column[Any]) -> str:
    """The Postgres type a column's values travel as in an array parameter: the column's own type without
    a length (a CAST to varchar(n) would truncate silently where the INSERT's assignment raises), and JSON
    as text, turned into the column's type in the statement."""
    if isinstance(column.type, JSON | String):
        return "text"
    if isinstance(column.type, Numeric):
        return "numeric"
    return column.type.compile(dialect=postgresql.dialect())


class ArrayRows:
    """A batch of rows of `table` sent as one array per column and unpacked by `unnest`, in order: one
    statement whatever the batch's size, with one parameter per column (the outbox's `add_events` and the
    commissions' revenue insert do the same). An `executemany` of the same rows costs a Bind/Execute per
    row, ~30 ms for 200 opportunities against a few for this (docs/benchmarks.md).

    `insert(rows)` inserts them in the given order (identity columns numbered in that order), followed by
    `on_conflict` if given; `update(rows)` sets `columns` of the rows whose `key` matches (one row per key).
    Neither runs for an empty batch. `prefix` names the parameters (`<prefix><column>`), so that several
    batches can share one statement (`insert_sql` as a data-modifying WITH)."""

    def __init__(self, table: Table, columns: Sequence[str], *, key: str | None = None, on_conflict: str = "",
                 prefix: str = "") -> None:
        self.table = table
        self.columns = tuple(columns)
        self.key = key
        self.prefix = prefix
        self._json = {c for c in self.columns if isinstance(table.c[c].type, JSON)}
        arrays = ", ".join(f"CAST(:{prefix}{c} AS {_array_element(table.c[c])}[])" for c in self.columns)
        names = ", ".join(self.columns)
        self._from = f"unnest({arrays}) WITH ORDINALITY AS v({names}, n)"
        self.insert_sql = (f"INSERT INTO {table.fullname} ({names}) "
                           f"SELECT {', '.join(self._value(c) for c in self.columns)} FROM {self._from} ORDER BY v.n"
                           + (f" {on_conflict}" if on_conflict else ""))
        self._insert: TextClause | None = None
        self._update: TextClause | None = None

    def _value(self, name: str) -> str:
        kind = self.table.c[name].type.compile(dialect=postgresql.dialect())
        return f"CAST(v.{name} AS {kind})" if name in self._json else f"v.{name}"

    def params(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        # None is SQL NULL in a JSON column (SQLAlchemy's JSON type would store JSON 'null'; both read as None).
        p = self.prefix
        return {p + c: [None if (v := r[c]) is None else json.dumps(v) for r in rows] if c in self._json
                else [r[c] for r in rows] for c in self.columns}

    def insert_statement(self) -> TextClause:
        if self._insert is None:
            self._insert = text(self.insert_sql)
        return self._insert

    @property
    def update_sql(self) -> str:
        if self.key is None:
            raise ValueError("an update needs the key column")
        sets = ", ".join(f"{c} = {self._value(c)}" for c in self.columns if c != self.key)
        return f"UPDATE {self.table.fullname} AS t SET {sets} FROM {self._from} WHERE t.{self.key} = v.{self.key}"

    def update_statement(self) -> TextClause:
        if self._update is None:
            self._update = text(self.update_sql)
        return self._update

    async def insert(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await session.execute(self.insert_statement(), self.params(rows))

    async def update(self, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await session.execute(self.update_statement(), self.params(rows))
