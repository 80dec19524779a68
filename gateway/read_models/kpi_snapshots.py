"""Pipeline KPIs computed once and kept, so a request for them is one indexed read.

The KPI figures depend on the opportunities (per owner, and all of them for the department), on the
settings, stage sets and partners (everyone's figures), and on the day. Each of these has a
generation: the consumers bump the generations a batch touches in the batch's own transaction
(`changed`), in key order and as their last statement, so the hot rows are held only until commit.
A snapshot is the KPIs' JSON for one scope (the department or an owner) and one day, stamped with the
generations it was computed at; it answers a request only while both are current, so a request never
sees figures older than the read model it would otherwise compute them from.

Snapshots are computed for the consumers (the department's, once a batch has committed, in a
transaction of its own, at most every `REFRESH_SECONDS` per process: the rest of a burst waits for
the next refresh or the next read) and by the first request that finds none current (the owners'
ones: only scopes somebody reads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime

import asyncpg
from sqlalchemy import BigInteger, Date, DateTime, Text, event, func, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from gateway.read_models.base import SCHEMA, Base
from runtime.db import driver_connection
from runtime.single_flight import SingleFlight

logger = logging.getLogger(__name__)

DEPARTMENT = "department"
EVERYONE = "everyone"  # settings, stage sets, partners: every scope's figures
# The consumers' refresh of a snapshot runs after their batch commits, at most once a second per
# process: a burst of batches costs one computation a second, not one per batch.
REFRESH_SECONDS = 1.0


def owner_scope(owner: str) -> str:
    return f"owner:{owner}"


class KpiGeneration(Base):
    __tablename__ = "pipeline_kpi_generation"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)


class KpiSnapshot(Base):
    __tablename__ = "pipeline_kpi_snapshot"

    scope: Mapped[str] = mapped_column(Text, primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    generation: Mapped[int] = mapped_column(BigInteger)
    everyone_generation: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[str] = mapped_column(Text)  # the response's JSON, byte for byte
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


TABLES = (KpiGeneration.__table__, KpiSnapshot.__table__)

_BUMP = text(
    f"INSERT INTO {SCHEMA}.pipeline_kpi_generation AS g (scope, generation) "
    "SELECT s, 1 FROM unnest(CAST(:scopes AS text[])) AS s ORDER BY s "
    "ON CONFLICT (scope) DO UPDATE SET generation = g.generation + 1")

# A snapshot, if it is of this day and both its generations are current (missing generations are 0).
# Run by asyncpg itself (runtime.db.driver_connection): $1 the scope, $2 the day.
_CURRENT = (
    f"SELECT s.body FROM {SCHEMA}.pipeline_kpi_snapshot s "
    f"LEFT JOIN {SCHEMA}.pipeline_kpi_generation g ON g.scope = s.scope "
    f"LEFT JOIN {SCHEMA}.pipeline_kpi_generation e ON e.scope = '{EVERYONE}' "
    "WHERE s.scope = $1 AND s.as_of = $2 AND s.generation = coalesce(g.generation, 0) "
    "AND s.everyone_generation = coalesce(e.generation, 0)")

_GENERATIONS = text(
    f"SELECT coalesce((SELECT generation FROM {SCHEMA}.pipeline_kpi_generation WHERE scope = :scope), 0), "
    f"coalesce((SELECT generation FROM {SCHEMA}.pipeline_kpi_generation WHERE scope = '{EVERYONE}'), 0)")

# Never replaces a snapshot computed at newer generations (a slow request racing a consumer).
_STORE = text(
    f"INSERT INTO {SCHEMA}.pipeline_kpi_snapshot AS s (scope, as_of, generation, everyone_generation, body) "
    "VALUES (:scope, :as_of, :generation, :everyone, :body) ON CONFLICT (scope) DO UPDATE SET "
    "as_of = EXCLUDED.as_of, generation = EXCLUDED.generation, everyone_generation = EXCLUDED.everyone_generation, "
    "body = EXCLUDED.body, computed_at = now() "
    "WHERE (s.as_of, s.everyone_generation, s.generation) <= (EXCLUDED.as_of, EXCLUDED.everyone_generation, "
    "EXCLUDED.generation)")


async def changed(session: AsyncSession, scopes: Iterable[str]) -> None:
    """Mark these scopes' snapshots out of date, in the caller's transaction (call it last)."""
    wanted = sorted(set(scopes))
    if wanted:
        await session.execute(_BUMP, {"scopes": wanted})


async def current_on(conn: asyncpg.Connection, scope: str, as_of: date) -> str | None:
    """The kept KPIs, if current: one statement outside a transaction (no BEGIN/ROLLBACK round trips),
    on a connection the request already holds (the one it was authenticated on)."""
    body: str | None = await conn.fetchval(_CURRENT, scope, as_of)
    return body


async def current(engine: AsyncEngine, scope: str, as_of: date) -> str | None:
    """`current_on`, on a connection of its own."""
    async with driver_connection(engine) as conn:
        return await current_on(conn.driver, scope, as_of)


Compute = Callable[[AsyncSession], Awaitable[str]]


async def compute_and_store(session: AsyncSession, scope: str, as_of: date, compute: Compute) -> str:
    """Compute the scope's KPIs and keep them, stamped with the generations read *before* computing:
    a change committed meanwhile makes the snapshot look older than it is, never newer."""
    generation, everyone = (await session.execute(_GENERATIONS, {"scope": scope})).one()
    body = await compute(session)
    await session.execute(_STORE, {"scope": scope, "as_of": as_of, "generation": generation,
                                   "everyone": everyone, "body": body})
    return body


class Computations:
    """One computation of a scope's snapshot at a time per process (one per app: keep it on the app).

    A snapshot found out of date is computed by the request that found it; without this, every request
    for the same scope arriving meanwhile computed it too (a dozen statements, ~40 ms of the gateway's
    CPU and more of Postgres's at 1M opportunities): 16 concurrent readers of an owner's KPIs after a
    change computed them 16 times at once. Requests arriving during a computation wait for it instead.

    A request must not get figures older than those it would have computed itself. A computation
    started after the request arrived read the generations after it did: its result does. One started
    before may have read them before a change the request must see: the request then reads the snapshot
    the computation kept, which is current only if nothing changed since (`recheck`: one statement),
    else it waits for (or starts) a computation that started after it arrived."""

    def __init__(self) -> None:
        self._flights: SingleFlight[str, str] = SingleFlight()

    def running(self, scope: str) -> bool:
        return self._flights.running(scope)

    async def computed(self, scope: str, arrived: float, compute: Callable[[], Awaitable[str]],
                       recheck: Callable[[], Awaitable[str | None]]) -> str:
        """The scope's snapshot as of `arrived` (time.monotonic() when the request found it out of date,
        or earlier): computed by `compute` unless a computation of it is under way."""
        while True:
            flight = self._flights.flight(scope, compute)
            body = await flight.result()
            if flight.started >= arrived:
                return body
            kept = await recheck()
            if kept is not None:
                return kept


class Refresher:
    """Keeps one scope's snapshot fresh from the consumers: after a batch that changed its inputs has
    committed, computes it afresh in a transaction of its own, at most every `every` seconds per
    process (a batch committed meanwhile is covered by the next run). Off the consumer's path: the
    computation is a dozen statements, which, inside the batch's transaction, held up every batch
    that ran it (by ~40 ms idle and hundreds of ms on a busy 2-core machine, bench.event_latency)."""

    def __init__(self, every: float = REFRESH_SECONDS) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._running: SingleFlight[str, None] = SingleFlight()
        self._again: set[str] = set()

    def due(self, scope: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(scope, float("-inf")) < self.every:
            return False
        self._last[scope] = now
        return True

    def after_commit(self, session: AsyncSession, scope: str, compute: Callable[[date], Compute]) -> None:
        """Refresh `scope` (today's, UTC) once `session`'s transaction has committed (not if it rolls back)."""
        engine = session.bind
        assert isinstance(engine, AsyncEngine)

        def committed(_session: object) -> None:
            if self._running.running(scope):
                self._again.add(scope)  # the run under way read before this commit: go once more
                return
            self._running.flight(scope, lambda: self._refresh(engine, scope, compute))

        event.listen(session.sync_session, "after_commit", committed, once=True)

    async def _refresh(self, engine: AsyncEngine, scope: str, compute: Callable[[date], Compute]) -> None:
        while True:
            wait = self._last.get(scope, float("-inf")) + self.every - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._again.discard(scope)
            self.due(scope)
            try:
                today = datetime.now(UTC).date()
                async with AsyncSession(engine) as session, session.begin():
                    await compute_and_store(session, scope, today, compute(today))
            except Exception:  # the next batch or the next request computes it
                logger.warning("refreshing the %s KPIs failed", scope, exc_info=True)
                return
            if scope not in self._again:
                return
