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
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import asyncpg
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError
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
from runtime import bus, telemetry
from runtime.db import NAMING_CONVENTION, driver_connection

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


def events_statement(schema: str, *, before: str = "", first: int = 1) -> str:
    """`add_events` as a statement for an asyncpg connection, its parameters numbered from `$first` (the
    values `events_args` gives), after the caller's own common table expressions `before` (each
    `name AS (...)` followed by a comma; a data-modifying one writes the rows the events describe): the
    caller's rows and its events in one statement, one round trip."""
    p = [f"${first + i}" for i in range(6)]
    return (
        f"WITH {before}added AS (INSERT INTO {schema}.outbox (event_id, subject, aggregate, payload, headers) "
        f"SELECT e.id, e.subject, e.aggregate, e.payload, {p[4]}::jsonb "
        f"FROM unnest({p[0]}::uuid[], {p[1]}::text[], {p[2]}::text[], {p[3]}::text[]) "
        f"WITH ORDINALITY AS e(id, subject, aggregate, payload, n) ORDER BY e.n) "
        f"SELECT pg_notify({p[5]}, '')")


def events_args(schema: str, events: Sequence[Event]) -> list[Any]:
    """The parameters of `events_statement`, in order."""
    return [[e.event_id for e in events], [e.subject for e in events], [e.aggregate_key() for e in events],
            [e.model_dump_json() for e in events], json.dumps(telemetry.inject_headers()), channel(schema)]


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
ReplyHandler = Callable[[str, BaseException | None], None]


class _Publisher:
    """JetStream publishes with their acks on one wildcard reply subscription of the connection.

    What nats-py's `publish_async` does, without what made it most of the relay's CPU per row
    (docs/benchmarks.md, issue 8 backbone): a semaphore acquired through `asyncio.wait_for`, a random
    token and a NUID per message, a future with a done callback per message and the PubAck parsed
    into a dataclass. Here a publish's reply subject is the inbox and a counter; its reply is handed to
    the window's handler as (token, None) for an ack, (token, error) for a refusal. A reply that comes
    after the window gave up on it (`forget`) is dropped."""

    def __init__(self, nc: Any) -> None:
        self.nc = nc
        self.prefix = ""
        self.pending: dict[str, ReplyHandler] = {}
        self._next = 0
        self._sub: Any = None
        # Checked subjects, and the header lines of the stored headers (rows written together share them).
        self._subjects: set[str] = set()
        self._lines: dict[str, bytes] = {}

    async def start(self) -> None:
        if self._sub is None:
            inbox = self.nc.new_inbox()  # under the connection's own inbox prefix (runtime.bus)
            self._sub = await self.nc.subscribe(f"{inbox}.*", cb=self._on_reply)
            self.prefix = f"{inbox}."

    async def publish(self, rows: Sequence[Row[Any]], handler: ReplyHandler) -> list[str | Exception]:
        """Publish `rows` in this order as one write to the connection (`runtime.bus.write_frames`); for
        each row its reply token, or why it was not sent (then nothing was sent for it)."""
        sent: list[str | Exception] = []
        frames: list[bytes] = []
        try:
            for row in rows:
                token = str(self._next + 1)
                try:
                    frames.append(self._frame(row, self.prefix + token))
                except Exception as exc:  # this row cannot be sent (a bad subject or header, too large)
                    sent.append(exc)
                    continue
                self._next += 1
                self.pending[token] = handler
                sent.append(token)
            await bus.write_frames(self.nc, frames)
        except BaseException as exc:
            for one in sent:
                if isinstance(one, str):
                    self.pending.pop(one, None)
            if not isinstance(exc, Exception):
                raise
            return [one if isinstance(one, Exception) else exc for one in sent]
        return sent

    def _frame(self, row: Row[Any], reply: str) -> bytes:
        subject: str = row[_SUBJECT]
        if subject not in self._subjects:
            self._subjects.add(bus.check_subject(subject))
        payload: bytes = row[_PAYLOAD].encode()
        if len(payload) > self.nc.max_payload:
            raise nats.errors.MaxPayloadError
        stored = row[_HEADERS]
        lines = self._lines.get(stored) if isinstance(stored, str) else None
        if lines is None:
            headers = stored if isinstance(stored, dict) else json.loads(stored or "{}")
            lines = bus.header_lines({k: v for k, v in headers.items() if k != "Nats-Msg-Id"})
            if isinstance(stored, str) and len(self._lines) < 10_000:
                self._lines[stored] = lines
        return bus.hpub_frame(subject, reply, lines + b"Nats-Msg-Id: %s\r\n" % str(row[_EVENT_ID]).encode(), payload)

    def forget(self, token: str) -> None:
        self.pending.pop(token, None)

    async def _on_reply(self, msg: Msg) -> None:
        token = msg.subject[len(self.prefix):]
        handler = self.pending.pop(token, None)
        if handler is not None:
            handler(token, _refusal(msg))


def _refusal(msg: Msg) -> BaseException | None:
    """None for a JetStream PubAck, else why the message was not stored."""
    if msg.headers and msg.headers.get("Status") == "503":
        return NoStreamResponseError()
    data = msg.data
    if b'"error"' not in data:  # the common case: {"stream":..,"seq":..} parsed only when it may be an error
        return None
    try:
        reply = json.loads(data)
    except ValueError as exc:
        return exc
    if isinstance(reply, dict) and "error" in reply:
        return APIError.from_error(reply["error"])
    return None


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

    A batch (the rows claimed in one transaction) ends with its window drained, then the mark-sent,
    the commit and the next claim, with nothing in flight meanwhile: 2,000 rows a batch rather than
    500 made the relay ~40 % faster in bench.backbone (docs/benchmarks.md, issue 8 backbone).
    """

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        dsn: str,
        schema: str,
        js: JetStreamContext,
        batch: int = 2000,
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
        self._pub: _Publisher | None = None

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
        # On the driver connection: SQLAlchemy's execution and row processing were a third of the relay's
        # CPU outside the publishes (docs/benchmarks.md, issue 8 backbone).
        async with driver_connection(self.engine) as lent:
            conn = lent.driver
            async with conn.transaction():
                rows = await conn.fetch(_claim(self.schema), self.batch)
                if not rows:
                    return 0
                sent, error = await self.publish_window(rows)
                if sent:
                    await conn.execute(_mark_sent(self.schema), sent)
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
            queues.setdefault(row[_AGGREGATE], deque()).append(row)
        ready: deque[str] = deque(queues)  # aggregates whose next row may go out, in first-row order
        publisher = await self._publisher()
        in_flight: dict[str, _InFlight] = {}  # reply token -> (row, the loop time its ack is given up at)
        replies: deque[tuple[str, BaseException | None]] = deque()
        wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        acked: list[int] = []
        error: BaseException | None = None

        def on_reply(token: str, failed: BaseException | None) -> None:
            replies.append((token, failed))
            wake.set()

        try:
            while ready or in_flight:
                due = loop.time() + self.publish_timeout
                batch = [queues[ready.popleft()].popleft()
                         for _ in range(min(len(ready), self.max_in_flight - len(in_flight)))]
                for row, token in zip(batch, await publisher.publish(batch, on_reply), strict=True):
                    if isinstance(token, Exception):  # not even sent: the aggregate waits for the next round
                        error = error or token
                        continue
                    in_flight[token] = (row, due)
                if not in_flight:
                    break
                if not replies:
                    # One timer per wait, not per row: rows are in flight in the order they were sent,
                    # so the first one has the nearest deadline.
                    deadline = next(iter(in_flight.values()))[1]
                    try:
                        await asyncio.wait_for(wake.wait(), max(0.0, deadline - loop.time()))
                    except TimeoutError:
                        now = loop.time()
                        for token, (row, at) in list(in_flight.items()):
                            if at > now:
                                break
                            publisher.forget(token)
                            replies.append((token, TimeoutError(
                                f"no ack for {row[_EVENT_ID]} in {self.publish_timeout}s")))
                wake.clear()
                while replies:
                    token, failed = replies.popleft()
                    entry = in_flight.pop(token, None)
                    if entry is None:
                        continue
                    row = entry[0]
                    if failed is not None:
                        error = error or failed
                        # A failed row ends its aggregate's chain: its successors must not overtake it.
                    else:
                        acked.append(row[_ID])
                        if queues[row[_AGGREGATE]]:
                            ready.append(row[_AGGREGATE])
        finally:
            # Cancelled (the relay stopping) or done: replies still to come are ignored.
            for token in in_flight:
                publisher.forget(token)
        if error is not None:
            logger.debug("outbox relay for %s: %d of %d acknowledged; first error: %r", self.schema,
                         len(acked), len(rows), error)
        return acked, error

    async def _publisher(self) -> _Publisher:
        nc = self.js._nc
        if self._pub is None or self._pub.nc is not nc:
            self._pub = _Publisher(nc)
        await self._pub.start()
        return self._pub

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


# The columns publish_window reads, by position: asyncpg's records (the relay) and SQLAlchemy's rows
# (republish) both index.
_ID, _EVENT_ID, _SUBJECT, _AGGREGATE, _PAYLOAD, _HEADERS = range(6)


@cache
def _claim(schema: str) -> str:
    return (f"SELECT id, event_id::text, subject, aggregate, payload, headers::text FROM {schema}.outbox "
            "WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED")


@cache
def _mark_sent(schema: str) -> str:
    # One statement per batch, the same text for any number of ids (prepared once).
    return f"UPDATE {schema}.outbox SET sent_at = now() WHERE id = ANY($1::bigint[])"


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
