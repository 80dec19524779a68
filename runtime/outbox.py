"""The transactional outbox and its relay.

A service writes its state change and the event row in one transaction (`add_event`). The relay
claims unsent rows with FOR UPDATE SKIP LOCKED, publishes them to JetStream with Nats-Msg-Id =
event id, and marks them sent only after the broker's ack. It is woken by NOTIFY on commit and
polls as a fallback. Sent rows are kept for a retention window so any range can be re-published
(JetStream can lose acknowledged messages on a crash; the inboxes make a re-publish harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import asyncpg
from nats.js import JetStreamContext
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Row,
    Table,
    Text,
    Uuid,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.base import Event
from runtime import telemetry
from runtime.db import NAMING_CONVENTION

logger = logging.getLogger(__name__)


@cache
def outbox_table(schema: str) -> Table:
    md = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    return Table(
        "outbox",
        md,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Uuid, nullable=False, unique=True),
        Column("subject", Text, nullable=False),
        Column("aggregate", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Index("outbox_unsent_idx", "id", postgresql_where=text("sent_at IS NULL")),
        # Sent rows are deleted by age (OUTBOX_RETENTION_DAYS) and re-published by time range.
        Index("outbox_created_at_idx", "created_at"),
    )


def channel(schema: str) -> str:
    return f"outbox_{schema}"


async def add_event(session: AsyncSession, schema: str, event: Event) -> None:
    """Stage an event in the same transaction as the state change it describes."""
    await add_events(session, schema, [event])


async def add_events(session: AsyncSession, schema: str, events: Sequence[Event]) -> None:
    """Stage events (in this order) in the caller's transaction, and wake the relay when it commits:
    one statement, one round trip, for any number of events."""
    if not events:
        return
    await session.execute(_add_events(schema), {
        "ids": [e.event_id for e in events],
        "subjects": [e.subject for e in events],
        "aggregates": [e.aggregate_key() for e in events],
        "payloads": [e.model_dump_json() for e in events],
        "headers": json.dumps(telemetry.inject_headers()),
        "channel": channel(schema),
    })


@cache
def _add_events(schema: str) -> Any:
    # The rows get their ids (the publish order) in the order of the arrays. The NOTIFY is delivered
    # to the relay's LISTEN only when the transaction commits.
    return text(
        f"WITH added AS (INSERT INTO {schema}.outbox (event_id, subject, aggregate, payload, headers) "
        "SELECT e.id, e.subject, e.aggregate, e.payload, CAST(:headers AS jsonb) "
        "FROM unnest(CAST(:ids AS uuid[]), CAST(:subjects AS text[]), CAST(:aggregates AS text[]), "
        "CAST(:payloads AS text[])) WITH ORDINALITY AS e(id, subject, aggregate, payload, n) ORDER BY e.n) "
        "SELECT pg_notify(:channel, '')")


class RelayIncomplete(Exception):
    pass


# One row in flight: the row and the loop time its ack is given up at.
_InFlight = tuple[Row[Any], float]


class OutboxRelay:
    """Publishes the outbox in id order, many rows in flight.

    A window of up to `max_in_flight` JetStream async publishes is outstanding at once, over rows of
    different aggregates; an aggregate has one row in flight at a time, and its next row goes out
    when the broker has acknowledged the previous one. So the stream holds each aggregate's events in
    outbox order whatever fails: a publish that fails or times out in the middle of a window (its
    message may or may not be stored) ends its aggregate's chain for this round, the other
    aggregates carry on, every acknowledged row is marked sent (one statement per batch) and the rest
    are published again from the failed row on, in order. A row stored whose ack was lost goes out
    twice; the broker's duplicate window (Nats-Msg-Id = event id) or the consumers' inboxes absorb it.

    Rows carry the trace context stored with them (`add_events`) as message headers: the consumer's
    span continues the writer's trace, with no span of the relay's own per row.
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        dsn: str,
        schema: str,
        js: JetStreamContext,
        batch: int = 500,
        poll_seconds: float = 2.0,
        retention: timedelta = timedelta(days=14),
        max_in_flight: int = 256,
        publish_timeout: float = 5.0,
    ) -> None:
        self.engine = engine
        self.dsn = dsn
        self.schema = schema
        self.js = js
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.retention = retention
        self.max_in_flight = max_in_flight
        self.publish_timeout = publish_timeout
        self._wake = asyncio.Event()
        self.table = outbox_table(schema)
        self.published = 0
        self.is_leader = False
        self.failures = 0  # failed rounds in a row (NATS or Postgres unreachable); 0 after a good round

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set. One relay per service is active (an advisory lock); the others
        wait, so events of one aggregate are never published out of order by two relays."""
        while not stop.is_set():
            listener: asyncpg.Connection | None = None
            try:
                listener = await asyncpg.connect(self.dsn)
                await self._become_leader(listener, stop)
                if stop.is_set():
                    return
                await listener.add_listener(channel(self.schema), self._on_notify)
                last_purge = datetime.min
                while not stop.is_set():
                    self._wake.clear()
                    count = await self.relay_once()
                    self.failures = 0
                    if (now := datetime.now()) - last_purge > timedelta(hours=1):
                        await self.purge_sent()
                        last_purge = now
                    if count < self.batch:
                        await wait_any(self._wake, stop, self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = min(0.2 * 2**self.failures, 5.0)
                logger.warning("outbox relay for %s: %s; retrying in %.1fs", self.schema, exc, delay)
                await wait_any(None, stop, delay)
            finally:
                self.is_leader = False
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await listener.close()

    def _on_notify(self, *_args: Any) -> None:
        self._wake.set()

    async def _become_leader(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        key = f"outbox-relay:{self.schema}"
        while not stop.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
                self.is_leader = True
                return
            await wait_any(None, stop, self.poll_seconds)

    async def relay_once(self) -> int:
        """Publish one batch of unsent rows; returns how many rows were claimed."""
        t = self.table
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t.c.id, t.c.event_id, t.c.subject, t.c.aggregate, t.c.payload, t.c.headers)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            sent, error = await self.publish_window(rows)
            if sent:
                await conn.execute(_mark_sent(self.schema), {"ids": sent})
        self.published += len(sent)
        if len(sent) < len(rows):
            raise RelayIncomplete(f"{len(rows) - len(sent)} of {len(rows)} events not acknowledged by JetStream"
                                  f" ({error!r}); they go out again in order")
        return len(rows)

    async def publish_window(self, rows: Sequence[Row[Any]]) -> tuple[list[int], BaseException | None]:
        """Publish `rows` (in id order) with up to `max_in_flight` acks outstanding and one per aggregate.
        Returns the ids of the rows the broker acknowledged, each aggregate's a prefix of its rows in
        order, and the first error met (None when all were acknowledged)."""
        queues: dict[str, deque[Row[Any]]] = {}
        for row in rows:
            queues.setdefault(row.aggregate, deque()).append(row)
        ready: deque[str] = deque(queues)  # aggregates whose next row may go out, in first-row order
        in_flight: dict[asyncio.Future[Any], _InFlight] = {}
        completed: deque[asyncio.Future[Any]] = deque()
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        acked: list[int] = []
        error: BaseException | None = None

        def on_done(future: asyncio.Future[Any]) -> None:
            completed.append(future)
            wake.set()

        try:
            while ready or in_flight:
                while ready and len(in_flight) < self.max_in_flight:
                    row = queues[ready.popleft()].popleft()
                    try:
                        # No wait_stall: our window is far below nats-py's own limit of pending acks, so
                        # its semaphore never blocks (and a wait_stall costs a task and a timer per row).
                        future = await self.js.publish_async(row.subject, row.payload.encode(),
                                                             headers=_headers(row))
                    except Exception as exc:  # not even sent: the aggregate waits for the next round
                        error = error or exc
                        continue
                    in_flight[future] = (row, loop.time() + self.publish_timeout)
                    future.add_done_callback(on_done)
                if not in_flight:
                    break
                if not completed:
                    # One timer per wait, not per row: rows are in flight in the order they were sent,
                    # so the first one has the nearest deadline.
                    deadline = next(iter(in_flight.values()))[1]
                    try:
                        await asyncio.wait_for(wake.wait(), max(0.0, deadline - loop.time()))
                    except TimeoutError:
                        now = loop.time()
                        for future, (_row, due) in list(in_flight.items()):
                            if due > now:
                                break
                            future.cancel()  # its done callback files it under `completed`
                        await asyncio.sleep(0)  # let those callbacks run
                wake.clear()
                while completed:
                    future = completed.popleft()
                    row, _due = in_flight.pop(future)
                    if future.cancelled():
                        error = error or TimeoutError(f"no ack for {row.event_id} in {self.publish_timeout}s")
                    elif (exc := future.exception()) is not None:
                        error = error or exc
                    else:
                        acked.append(row.id)
                        if queues[row.aggregate]:
                            ready.append(row.aggregate)
                    # A failed row ends its aggregate's chain: its successors must not overtake it.
        finally:
            # Cancelled (the relay stopping): give up the outstanding acks, freeing nats-py's slots.
            for future in in_flight:
                future.cancel()
        if error is not None:
            logger.debug("outbox relay for %s: %d of %d acknowledged; first error: %r", self.schema,
                         len(acked), len(rows), error)
        return acked, error

    async def republish(self, *, since: datetime | None = None, until: datetime | None = None) -> int:
        """Publish stored rows again, sent or not (for recovery after a broker lost messages)."""
        t = self.table
        query = select(t.c.id, t.c.event_id, t.c.subject, t.c.aggregate, t.c.payload, t.c.headers).order_by(t.c.id)
        if since is not None:
            query = query.where(t.c.created_at >= since)
        if until is not None:
            query = query.where(t.c.created_at < until)
        count = 0
        async with self.engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=self.batch))
            async for partition in result.partitions():
                sent, _error = await self.publish_window(partition)
                if len(sent) < len(partition):
                    raise RelayIncomplete("JetStream did not acknowledge every re-published event")
                count += len(sent)
        return count

    async def purge_sent(self) -> int:
        t = self.table
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(t).where(t.c.sent_at.is_not(None), t.c.sent_at < func.now() - self.retention)
            )
        return result.rowcount or 0

    async def pending(self) -> int:
        t = self.table
        async with self.engine.connect() as conn:
            return int((await conn.scalar(select(func.count()).where(t.c.sent_at.is_(None)))) or 0)


def _headers(row: Row[Any]) -> dict[str, str]:
    stored = row.headers if isinstance(row.headers, dict) else json.loads(row.headers or "{}")
    return {**stored, "Nats-Msg-Id": str(row.event_id)}


@cache
def _mark_sent(schema: str) -> Any:
    # One statement per batch, the same text for any number of ids (prepared once).
    return text(f"UPDATE {schema}.outbox SET sent_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))")


async def wait_any(event: asyncio.Event | None, stop: asyncio.Event, timeout: float) -> None:
    """Until `stop` or `event` is set, or `timeout` seconds pass: a loop's pause that a wake-up or the
    process's stop cuts short (the relay here, the sync workers' drivers)."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if event is not None:
        waiters.append(asyncio.ensure_future(event.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
