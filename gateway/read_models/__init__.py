"""KPI read models built from the services' events; rebuildable by replaying the streams.

Each feature has a module here with its tables, its event handlers and its SUBSCRIPTIONS and
READ_MODEL_TABLES; this package gathers them.
"""

from __future__ import annotations

from sqlalchemy import Table, delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.read_models import commissions, funding, partners, pipeline, week
from gateway.read_models.base import SCHEMA
from runtime.inbox import Subscription, inbox_table

FEATURES = (partners, pipeline, commissions, week, funding)

SUBSCRIPTIONS: tuple[Subscription, ...] = tuple(s for f in FEATURES for s in f.SUBSCRIPTIONS)
READ_MODEL_TABLES: tuple[Table, ...] = tuple(t for f in FEATURES for t in f.READ_MODEL_TABLES)


async def reset(session: AsyncSession) -> None:
    """Empty every read model and forget which events built them, so a replay rebuilds them."""
    names = ", ".join(f"{SCHEMA}.{t.name}" for t in READ_MODEL_TABLES)
    await session.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))
    for table in READ_MODEL_TABLES:
        await session.execute(delete(table))
    inbox = inbox_table(SCHEMA)
    await session.execute(delete(inbox).where(inbox.c.consumer.in_([s.durable for s in SUBSCRIPTIONS])))
