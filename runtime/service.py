"""What a service process is: its streams, its consumers, its commands, its outbox relay, and a
health responder, started together and stopped cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from faststream import Context
from faststream.nats import JStream, NatsBroker
from nats.aio.client import Client as NATS
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import deadletters
from contracts.base import Command, StreamSpec
from contracts.registry import EVENTS
from runtime import bus, metrics, telemetry
from runtime.commands import CommandServer
from runtime.db import create_engine, plain_dsn, session_factory
from runtime.health import database_ok
from runtime.health import subjects as health_subjects
from runtime.inbox import InboxConsumer, Subscription
from runtime.outbox import OutboxRelay
from runtime.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass
class ServiceDefinition:
    name: str
    publishes: tuple[StreamSpec, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    commands: tuple[tuple[type[Command], Callable[[AsyncSession, Any], Awaitable[BaseModel]]], ...] = ()
    # Long-running work of the service besides its consumers (an email sender, say), started once the
    # broker runs and stopped with it; one ending while the service runs ends the process.
    workers: tuple[Callable[[RunningService], Awaitable[None]], ...] = ()
    # The Postgres schema, when the name (the NATS user, e.g. `aws-sync`) is not an identifier.
    db_schema: str | None = None

    @property
    def schema(self) -> str:
        return self.db_schema or self.name


@dataclass
class RunningService:
    definition: ServiceDefinition
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    broker: NatsBroker
    relay: OutboxRelay
    consumers: list[InboxConsumer]
    commands: CommandServer
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Why the process must end (NATS closed for good, a consumer or relay task died); exit non-zero.
    fatal: str | None = None
    on_fatal: Callable[[str], None] | None = None
    # Whether stopping hands what its consumers hold back to the bus (see runtime.inbox._Fetcher.stop), a
    # second or two; False where the bus goes away with the service (a test module's private NATS server).
    hand_back: bool = True

    @property
    def nc(self) -> NATS:
        return self.broker.connection

    def consumer_of(self, subject: str) -> InboxConsumer:
        return next(c for c in self.consumers if subject in c.subjects)

    def fail(self, reason: str) -> None:
        if self.fatal is not None:
            return
        self.fatal = reason
        logger.critical("%s: %s; stopping so the supervisor restarts it", self.definition.name, reason)
        self.stop.set()
        if self.on_fatal is not None:
            self.on_fatal(reason)

    async def health(self) -> dict[str, Any]:
        # Bounded, so a health reply never waits on a dead database or bus (runtime/health.py).
        db_ok = await database_ok(self.engine)
        nats_ok = self.nc.is_connected
        consumers: dict[str, dict[str, Any]] = {}
        now = time.monotonic()

        async def lag(c: InboxConsumer) -> None:
            stats = dict(vars(c.stats))
            paused = stats.pop("paused_since")
            last = stats.pop("last_batch_at")
            stats.update(alive=c.alive(), paused_seconds=round(now - paused, 1) if paused is not None else None,
                         last_batch_seconds_ago=round(now - last, 1) if last is not None else None)
            consumers[c.durable] = stats
            try:
                if not nats_ok:
                    raise ConnectionError("NATS is not connected")
                info = await self.nc.jetstream().consumer_info(c.stream, c.durable, timeout=0.5)
                stats.update(pending=info.num_pending, ack_pending=info.num_ack_pending,
                             redelivered_now=info.num_redelivered,
                             lag=(info.num_pending or 0) + (info.num_ack_pending or 0))
            except Exception:
                stats.update(pending=None, lag=None)

        await asyncio.gather(*(lag(c) for c in self.consumers))
        consumers_ok = all(v["alive"] and not v["waiting_long"] for v in consumers.values())
        return {
            "service": self.definition.name,
            "status": "ok" if db_ok and nats_ok and consumers_ok and self.fatal is None else "degraded",
            "database": db_ok,
            "nats": nats_ok,
            "fatal": self.fatal,
            "relay_leader": self.relay.is_leader,
            "outbox_published": self.relay.published,
            "consumers": consumers,
        }


def consumers_for(definition: ServiceDefinition, settings: Settings,
                  sessions: async_sessionmaker[AsyncSession]) -> list[InboxConsumer]:
    """One consumer per (consuming service, producer stream), with the subscriptions to that stream."""
    groups: dict[tuple[str, str], list[Subscription]] = {}
    for sub in definition.subscriptions:
        groups.setdefault((sub.consumer, sub.stream), []).append(sub)
    return [
        InboxConsumer(subs, sessions=sessions, schema=definition.schema, max_deliver=settings.bus_max_deliver,
                      ack_wait=settings.bus_ack_wait_seconds, backoff=settings.bus_backoff_seconds,
                      batch=settings.bus_fetch_batch)
        for subs in groups.values()
    ]


def register(broker: NatsBroker, definition: ServiceDefinition, consumers: list[InboxConsumer],
             server: CommandServer, health: Callable[[], Awaitable[dict[str, Any]]] | None = None, *,
             published: set[str] | None = None) -> None:
    """Everything the service answers, as subscribers and publishers of its one broker (also used,
    unconnected, to generate the AsyncAPI document; `published` then skips subjects already listed)."""
    for consumer in consumers:
        consumer.attach(broker)
    server.attach(broker)
    published = set() if published is None else published
    for spec in definition.publishes:
        for event in EVENTS:
            if event.stream.name == spec.name and event.subject not in published:
                published.add(event.subject)
                broker.publisher(event.subject, stream=JStream(spec.name, declare=False), schema=event,
                                 title=f"{event.subject}:publish", description=(event.__doc__ or "").strip())

    async def on_health(message: Any = Context("message")) -> bytes:
        return json.dumps(await health() if health is not None else {}).encode()

    for subject in health_subjects(definition.name):
        broker.subscriber(subject, title=f"{subject}:health", include_in_schema=False, decoder=bus.raw_body)(on_health)


async def start(definition: ServiceDefinition, settings: Settings, stop: asyncio.Event, *,
                on_fatal: Callable[[str], None] | None = None) -> RunningService:
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = session_factory(engine)
    holder: list[RunningService] = []

    async def closed() -> None:
        if holder and not holder[0].stop.is_set():  # not when we close it ourselves on the way out
            holder[0].fail("the NATS connection is closed for good")

    broker = bus.broker(settings.nats_url, name=definition.name, on_closed=closed)
    consumers = consumers_for(definition, settings, sessions)
    server = CommandServer(definition.name, sessions)
    for command, handler in definition.commands:
        server.register(command, handler)

    async def health() -> dict[str, Any]:
        return await holder[0].health()

    register(broker, definition, consumers, server, health)
    nc = await bus.connect_broker(broker)
    js = nc.jetstream()
    streams = {s.name: s for s in (*definition.publishes, deadletters.STREAM)}
    for sub in definition.subscriptions:
        streams.setdefault(sub.models[0].stream.name, sub.models[0].stream)
    await bus.ensure_streams(js, list(streams.values()))
    for consumer in consumers:
        await consumer.ensure(js)
    relay = OutboxRelay(
        engine=engine, dsn=plain_dsn(settings.database_url), schema=definition.schema, js=js,
        batch=settings.outbox_batch, poll_seconds=settings.outbox_poll_seconds,
        retention=timedelta(days=settings.outbox_retention_days),
    )
    running = RunningService(definition, settings, engine, sessions, broker, relay, consumers, server, stop,
                             on_fatal=on_fatal)
    holder.append(running)
    await broker.start()
    running.tasks.append(asyncio.create_task(relay.run(stop), name=f"{definition.name}-relay"))
    for worker in definition.workers:
        running.tasks.append(asyncio.create_task(worker(running), name=f"{definition.name}-{worker.__name__}"))
    running.tasks.append(asyncio.create_task(_watch(running), name=f"{definition.name}-watchdog"))
    logger.info("%s started", definition.name, extra={"fields": {"consumers": [c.durable for c in consumers]}})
    return running


async def _watch(running: RunningService) -> None:
    """A consumer or relay task that ends while the service runs leaves it deaf or mute: end the process
    (non-zero) so its supervisor starts a fresh one, rather than answer health checks while deaf."""
    relay_task = running.tasks[0]
    workers = running.tasks[1:1 + len(running.definition.workers)]
    while not running.stop.is_set():
        for task in workers:
            if task.done():
                exc = None if task.cancelled() else task.exception()
                running.fail(f"worker task {task.get_name()} ended: {exc!r}")
                return
        for consumer in running.consumers:
            exc = consumer.failure()
            if exc is not None or not consumer.alive():
                running.fail(f"consumer task {consumer.durable} died: {exc!r}")
                return
        if relay_task.done():
            exc = None if relay_task.cancelled() else relay_task.exception()
            running.fail(f"outbox relay task ended: {exc!r}")
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(running.stop.wait(), timeout=0.5)


async def shutdown(running: RunningService) -> None:
    running.stop.set()
    if not running.hand_back:
        for consumer in running.consumers:
            consumer.abandon_on_stop()
    for task in running.tasks:
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(running.broker.stop(), timeout=15)
    await running.engine.dispose()
    logger.info("%s stopped", running.definition.name)


def freeze_start_up() -> None:
    """Put what start-up made (modules, routes, models, metadata, the broker's subscribers: ~200,000
    objects) out of the garbage collector's reach: it lives as long as the process, and each full
    collection otherwise scans it all again, ~140 ms on a busy 2-core machine during which every
    request or batch in flight waits (bench.kpi_read, docs/benchmarks.md). For a process's entry
    point only, once started: a test process starts many services and apps, and what one leaves in
    cycles must stay collectable."""
    gc.collect()
    gc.freeze()


# A young collection every YOUNG_COLLECTION net new container objects instead of CPython's 700. A request
# or batch frees almost everything it makes by reference counting: the default threshold ran ~135 young
# collections a second in the gateway under bench.kpi_read, each promoting what the requests in flight
# held, and so a full collection every second (10-18 ms, every request waiting). Cycles are still
# collected, a little later.
YOUNG_COLLECTION = 10_000


def collect_less_often() -> None:
    """For a serving process's entry point (as `freeze_start_up`): collect the young generation every
    YOUNG_COLLECTION objects; the older generations' thresholds stay CPython's."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, middle, old)


def main(definition: ServiceDefinition) -> None:
    settings = get_settings()
    telemetry.setup(definition.name, level=settings.log_level, fmt=settings.log_format)
    if not settings.database_url or not settings.nats_url:
        raise SystemExit("DATABASE_URL and NATS_URL must be set (partnerops up sets them for you)")

    async def run() -> str | None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        running = await start(definition, settings, stop)
        freeze_start_up()
        scrape = None
        if settings.metrics_port is not None:
            process = metrics.ProcessMetrics(definition.name, consumers=lambda: running.consumers,
                                             nc=lambda: running.nc)
            scrape = await metrics.serve(process, settings.metrics_host, settings.metrics_port)
        await stop.wait()
        if scrape is not None:
            scrape.close()
        try:
            await asyncio.wait_for(shutdown(running), timeout=30)
        except (TimeoutError, Exception):
            logger.exception("%s: shutdown did not finish cleanly", definition.name)
        return running.fatal

    fatal = asyncio.run(run())
    if fatal is not None:
        raise SystemExit(1)
