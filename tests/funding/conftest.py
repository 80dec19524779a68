"""The relationships service running in-process against a database and a NATS server of the test
module's own (its stream and consumer names are fixed), plus helpers to publish pipeline events, wait
until the service has taken them in, and read what it published."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerConfig, DeliverPolicy

from gateway.app import create_app
from gateway.auth import STAFF_ROLES, Role
from gateway.users import ensure_user
from runtime import bus
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition
from tests.support.bus import bus_goes_too
from tests.support.gateway import PASSWORD, Gateway, Person


@pytest.fixture(scope="module")
async def service(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    settings = Settings(database_url=private_db["relationships"], nats_url=private_bus.url_for("relationships"),
                        bus_ack_wait_seconds=5, bus_backoff_seconds=(0.1, 0.3, 0.5), bus_max_deliver=4,
                        outbox_poll_seconds=0.2)
    stop = asyncio.Event()
    running = await start(definition, settings, stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def nc(service: RunningService, private_nats: str) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_nats, name="test-relationships")
    yield conn
    await conn.close()


async def published(nc: NATS, subject: str, *, where: Any = None, count: int = 1) -> list[dict[str, Any]]:
    """The bodies the service published on `subject` (read from the stream), once at least `count`
    match `where` (a predicate on the body)."""
    js = nc.jetstream()

    async def found() -> list[dict[str, Any]]:
        sub = await js.subscribe(subject, ordered_consumer=True,
                                 config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        bodies: list[dict[str, Any]] = []
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=0.3)
                except TimeoutError:
                    break
                body = json.loads(msg.data)
                if where is None or where(body):
                    bodies.append(body)
        finally:
            await sub.unsubscribe()
        return bodies if len(bodies) >= count else []

    return await eventually(found, f"{count} event(s) on {subject}")


# ------------------------------------------------------------------------- the gateway in front of it


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    """The gateway with the pipeline and relationships services, people of every role signed in."""
    common = {"environment": "test", "secret_key": TEST_SECRET, "outbox_poll_seconds": 0.2,
              "bus_ack_wait_seconds": 5.0}

    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner), **common)

    stop = asyncio.Event()
    services = [await start(pipeline_definition, settings_of("pipeline"), stop),
                await start(definition, settings_of("relationships"), stop)]
    settings = settings_of("gateway")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in STAFF_ROLES:
                email = f"{role.value}@funding.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf)
            yield g
            bus_goes_too(app.state.running)
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        bus_goes_too(*services)
        await asyncio.gather(*(shutdown(s) for s in services))  # side by side


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None, **kw: Any) -> httpx.Response:
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"}, **kw)
