"""Shared pieces of the backbone tests: a counting handler, consumers on scratch streams."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from contracts.base import Event
from runtime.db import session_factory
from runtime.inbox import InboxConsumer, Subscription
from runtime.outbox import add_events
from runtime.testing import eventually  # noqa: F401  (waits live in runtime.testing; kept for older imports)


def counting_handler(schema: str, *, before: Callable[[AsyncSession], Awaitable[None]] | None = None):
    """Adds the event's amount to its key's counter and counts how often it was applied."""

    async def handle(session: AsyncSession, event: Event) -> None:
        if before is not None:
            await before(session)
        await session.execute(
            text(f"INSERT INTO {schema}.counter (key, total, applications) VALUES (:k, :a, 1) "
                 f"ON CONFLICT (key) DO UPDATE SET total = counter.total + EXCLUDED.total, "
                 f"applications = counter.applications + 1"),
            {"k": event.key, "a": event.amount},  # type: ignore[attr-defined]
        )

    return handle


def consumer_for(js, engine: AsyncEngine, schema: str, models: tuple[type[Event], ...], *,
                 handle=None, consumer: str = "test", **kw) -> InboxConsumer:
    sub = Subscription(consumer=consumer, models=models, handle=handle or counting_handler(schema))
    kw.setdefault("backoff", (0.2, 0.2, 0.5))
    return InboxConsumer(sub, js=js, sessions=session_factory(engine), schema=schema, **kw)


def letters_key(consumer: InboxConsumer) -> str:
    """The name a consumer's only subscription parks its dead letters under."""
    [sub] = consumer.subs
    return sub.inbox_key


async def counters(engine: AsyncEngine, schema: str) -> dict[str, tuple[int, int]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text(f"SELECT key, total, applications FROM {schema}.counter"))
        return {r.key: (r.total, r.applications) for r in rows}



async def stop_task(task: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    try:
        await asyncio.wait_for(task, 10)
    except BaseException:
        task.cancel()


async def drained(js, consumer: InboxConsumer) -> bool:
    """The broker has nothing left to deliver to the consumer and nothing awaiting its ack: any
    redelivery or duplicate would have arrived by now. What tests wait for instead of a fixed pause."""
    info = await js.consumer_info(consumer.stream, consumer.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def write_events(engine, schema, events, per_txn: int = 50) -> None:
    sessions = session_factory(engine)
    for i in range(0, len(events), per_txn):
        async with sessions() as session, session.begin():
            await add_events(session, schema, events[i:i + per_txn])
