"""The gateway in-process (its real lifespan: read-model consumers, command client) and the pipeline
service in-process, on this module's own Postgres database and NATS server; people of every role
signed in through the real sign-in form."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import uvicorn

from runtime.embedded import EmbeddedNats, free_port
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually
from runtime.testing import eventually as wait_until  # noqa: F401
from services.pipeline.handlers import definition as pipeline_definition

# Tests import these from tests.support.gateway (never from this conftest); the names stay here, with
# wait_until (now runtime.testing.eventually), only so work written before the move still runs.
from tests.support.gateway import (  # noqa: F401
    PASSWORD,
    TEST_SETTINGS,
    Gateway,
    Person,
    Served,
    csrf_from,
    gateway_with_services,
    new_address,
)


@pytest.fixture(scope="module")
async def gateway(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    def settings_of(owner: str) -> Settings:
        # Each process logs in to NATS as itself, held to its grants by the server.
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner),
                        secret_key=TEST_SECRET, **TEST_SETTINGS)

    async with gateway_with_services(settings_of, [pipeline_definition], "gateway.test") as gw:
        yield gw


@pytest.fixture(scope="module")
async def served(gateway: Gateway) -> AsyncIterator[Served]:
    """Serves the module's gateway (its lifespan already running) the way `python -m gateway serve` does."""
    from gateway.__main__ import uvicorn_config

    port = free_port()
    config = uvicorn_config(gateway.app, gateway.settings, host="127.0.0.1", port=port, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started, "uvicorn to start")
    try:
        yield Served(base=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port)
    finally:
        server.should_exit = True
        await task
