"""The pipeline package's servers: a NATS and a migrated database of its own (service streams and
consumer names are fixed, so they must not be shared with other packages' services), the pipeline
service running in-process, and the gateway app with an API token holding every scope.

Tests share these servers, so each test works on partners, owners and ids of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from nats.aio.client import Client as NATS

from runtime import bus
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.testing import TestServers, platform_database, prepare_streams, unique
from services.pipeline.handlers import definition
from tests.pipeline.helpers import settings_for
from tests.support.bus import bus_goes_too


@pytest.fixture(scope="package")
def pipeline_bus(tmp_path_factory: pytest.TempPathFactory, servers: TestServers) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(store_dir=tmp_path_factory.mktemp("pipeline-nats")).start()
    try:
        prepare_streams(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
def pipeline_nats(pipeline_bus: EmbeddedNats) -> str:
    """The operator's login (tests publish as the sync worker or the billing system would)."""
    return pipeline_bus.url


@pytest.fixture(scope="package")
async def pipeline_db(servers: TestServers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("pl_"))


@pytest.fixture(scope="package")
async def pipeline_service(pipeline_db: dict[str, str], pipeline_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(definition, settings_for(pipeline_db["pipeline"], pipeline_bus.url_for("pipeline")), stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def bus_client(pipeline_nats: str, pipeline_service: RunningService) -> AsyncIterator[NATS]:
    conn = await bus.connect(pipeline_nats, name="pipeline-test")
    yield conn
    await conn.close()


@pytest.fixture(scope="package")
async def gateway_app(pipeline_db: dict[str, str], pipeline_bus: EmbeddedNats, pipeline_service: RunningService):
    from gateway.app import create_app

    app = create_app(settings_for(pipeline_db["gateway"], pipeline_bus.url_for("gateway")))
    async with app.router.lifespan_context(app):
        yield app
        bus_goes_too(app.state.running)


@pytest.fixture(scope="package")
async def api_token(gateway_app) -> str:
    from gateway.auth import SCOPES, digest, new_api_token
    from gateway.models import ApiToken

    token = new_api_token()
    async with gateway_app.state.running.sessions() as session, session.begin():
        session.add(ApiToken(name="pipeline-tests", token_hash=digest(token), scopes=sorted(SCOPES),
                             created_by="tests"))
    return token


@pytest.fixture
async def api(gateway_app, api_token: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=gateway_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 headers={"authorization": f"Bearer {api_token}"}) as client:
        yield client


@pytest.fixture
def new_owner(gateway_app):
    """A new team member to own deals and partners (they are owned by user id): returns (email, id)."""
    from sqlalchemy import select

    from gateway.auth import Role
    from gateway.models import User
    from gateway.users import ensure_user
    from runtime.testing import unique

    async def make() -> tuple[str, str]:
        email = f"{unique('owner')}@pipeline.test"
        await ensure_user(gateway_app.state.settings, email=email, name=email, role=Role.member,
                          password="owner password for tests")
        async with gateway_app.state.running.sessions() as session:
            return email, str(await session.scalar(select(User.id).where(User.email == email)))

    return make
