"""What a service process is: its streams, its consumers, its commands, its outbox relay, and a
health responder, started together and stopped cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contracts import deadletters
from contracts.base import Command, StreamSpec
from runtime import bus, telemetry
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

    @property
    def schema(self) -> str:
        return self.name


@dataclass
class RunningService:
    definition: ServiceDefinition
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nc: NATS
    relay: OutboxRelay
    consumers: list[InboxConsumer]
    commands: CommandServer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def health(self) -> dict[str, Any]:
        # Bounded, so a health reply never waits on a dead database or bus (runtime/health.py).
        db_ok = await database_ok(self.engine)
        nats_ok = self.nc.is_connected
        consumers: dict[str, dict[str, Any]] = {}

        async def lag(c: InboxConsumer) -> None:
            consumers[c.durable] = dict(vars(c.stats))
            try:
                if not nats_ok:
                    raise ConnectionError("NATS is not connected")
                info = await self.nc.jetstream().consumer_info(c.sub.stream, c.durable, timeout=0.5)
                consumers[c.durable].update(pending=info.num_pending, ack_pending=info.num_ack_pending,
                                            redelivered_now=info.num_redelivered)
            except Exception:
                consumers[c.durable].update(pending=None)

        await asyncio.gather(*(lag(c) for c in self.consumers))
        return {
            "service": self.definition.name,
            "status": "ok" if db_ok and nats_ok else "degraded",
            "database": db_ok,
            "nats": nats_ok,
            "relay_leader": self.relay.is_leader,
            "outbox_published": self.relay.published,
            "consumers": consumers,
        }


async def start(definition: ServiceDefinition, settings: Settings, stop: asyncio.Event) -> RunningService:
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    nc = await bus.connect(settings.nats_url, name=definition.name)
    js = nc.jetstream()
    streams = {s.name: s for s in (*definition.publishes, deadletters.STREAM)}
    for sub in definition.subscriptions:
        streams.setdefault(sub.models[0].stream.name, sub.models[0].stream)
    await bus.ensure_streams(js, list(streams.values()))
    relay = OutboxRelay(
        engine=engine, dsn=plain_dsn(settings.database_url), schema=definition.schema, js=js,
        batch=settings.outbox_batch, poll_seconds=settings.outbox_poll_seconds,
        retention=timedelta(days=settings.outbox_retention_days),
    )
    consumers = [
        InboxConsumer(sub=sub, js=js, sessions=sessions, schema=definition.schema,
                      max_deliver=settings.bus_max_deliver, ack_wait=settings.bus_ack_wait_seconds,
                      backoff=settings.bus_backoff_seconds, batch=settings.bus_fetch_batch)
        for sub in definition.subscriptions
    ]
    server = CommandServer(nc, definition.name, sessions)
    for command, handler in definition.commands:
        server.register(command, handler)
    running = RunningService(definition, settings, engine, sessions, nc, relay, consumers, server)

    async def on_health(msg: Msg) -> None:
        await msg.respond(json.dumps(await running.health()).encode())

    for subject in health_subjects(definition.name):
        await nc.subscribe(subject, cb=on_health)
    await server.start()
    running.tasks.append(asyncio.create_task(relay.run(stop), name=f"{definition.name}-relay"))
    for consumer in consumers:
        running.tasks.append(asyncio.create_task(consumer.run(stop), name=consumer.durable))
    logger.info("%s started", definition.name, extra={"fields": {"consumers": [c.durable for c in consumers]}})
    return running


async def shutdown(running: RunningService) -> None:
    await running.commands.stop()
    for task in running.tasks:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await running.nc.drain()
    await running.engine.dispose()
    logger.info("%s stopped", running.definition.name)


def main(definition: ServiceDefinition) -> None:
    settings = get_settings()
    telemetry.setup(definition.name, level=settings.log_level, fmt=settings.log_format)
    if not settings.database_url or not settings.nats_url:
        raise SystemExit("DATABASE_URL and NATS_URL must be set (partnerops up sets them for you)")

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        running = await start(definition, settings, stop)
        await stop.wait()
        await shutdown(running)

    asyncio.run(run())
