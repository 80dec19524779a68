"""Shared pieces of the pipeline tests: settings, the events a service staged, external events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contracts import sync
from runtime.db import plain_dsn
from runtime.settings import Settings
from runtime.testing import (
    TEST_SECRET,
    eventually,  # noqa: F401  (waits live in runtime.testing; kept for older imports)
)


async def staged_events(db: dict[str, str], aggregate: str) -> list[tuple[str, dict[str, Any]]]:
    """(subject, payload) of every event the pipeline staged for one aggregate, in order."""
    conn = await asyncpg.connect(plain_dsn(db["admin"]))
    try:
        rows = await conn.fetch("SELECT subject, payload FROM pipeline.outbox WHERE aggregate = $1 ORDER BY id",
                                aggregate)
    finally:
        await conn.close()
    return [(r["subject"], json.loads(r["payload"])) for r in rows]


async def sql(db: dict[str, str], query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(db["admin"]))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def send_raw(nc: Any, subject: str, body: Any) -> dict[str, Any]:
    """A command as any JSON (or bytes), bypassing the client-side model: what a hostile caller sends."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = await nc.request(subject, data, timeout=10)
    return json.loads(reply.data)


def external(**overrides: Any) -> sync.OpportunityExternalUpsertedV1:
    values: dict[str, Any] = dict(
        source="aws", external_id=f"O{uuid.uuid4().int % 10**9}", last_modified=datetime.now(UTC),
        name="Data platform migration", customer="Globex", stage="Qualified", amount="50000.00",
    )
    values.update(overrides)
    return sync.OpportunityExternalUpsertedV1.model_validate(values)


async def publish(js: Any, event: sync.OpportunityExternalUpsertedV1 | None = None, *, data: bytes | None = None,
                  msg_id: str | None = None) -> None:
    body = data if data is not None else event.model_dump_json().encode()  # type: ignore[union-attr]
    await js.publish(sync.OpportunityExternalUpsertedV1.subject, body,
                     headers={"Nats-Msg-Id": msg_id or (str(event.event_id) if event else str(uuid.uuid4()))})


def settings_for(db_url: str, nats_url: str) -> Settings:
    return Settings(environment="test", secret_key=TEST_SECRET, database_url=db_url, nats_url=nats_url,
                    log_format="text", bus_ack_wait_seconds=5, bus_backoff_seconds=(0.1, 0.2, 0.5),
                    bus_max_deliver=4, outbox_poll_seconds=0.2, bus_fetch_batch=64)
