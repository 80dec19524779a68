"""The commissions service running in-process against its own database schema and a NATS server of the
test module's own (its stream and consumer names are fixed), and the gateway in front of it. The
helpers the tests use are in tests/commissions/helpers.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from runtime import bus
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET
from services.commissions.handlers import definition as commissions_definition
from services.pipeline.handlers import definition as pipeline_definition
from tests.support.bus import bus_goes_too
from tests.support.gateway import TEST_SETTINGS, Gateway, gateway_with_services


@pytest.fixture(scope="module")
async def service(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    settings = Settings(database_url=private_db["commissions"], nats_url=private_bus.url_for("commissions"),
                        bus_ack_wait_seconds=5,
                        bus_backoff_seconds=(0.1, 0.3, 0.5), bus_max_deliver=4, outbox_poll_seconds=0.5)
    stop = asyncio.Event()
    running = await start(commissions_definition, settings, stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def bus_client(service: RunningService, private_nats: str) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_nats, name="test-commissions")
    yield conn
    await conn.close()


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    def settings_of(owner: str) -> Settings:
        # Each process logs in to NATS as itself, held to its grants by the server.
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner),
                        secret_key=TEST_SECRET, **TEST_SETTINGS)

    async with gateway_with_services(settings_of, [pipeline_definition, commissions_definition],
                                     "commissions.test") as g:
        yield g
