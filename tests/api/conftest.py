"""The whole HTTP API in front of real services: the gateway app with its real lifespan, the pipeline
commissions and relationships services in-process, on a NATS server and a database of this package's own (the
tests may stop that NATS server); an API token holding every scope and people of every role signed
in through the real sign-in form (session cookie + CSRF token)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import SCOPES, Role, digest, new_api_token
from gateway.models import ApiToken
from gateway.users import ensure_user
from integrations.aws_partner_central.handlers import definition as aws_sync_definition
from runtime.embedded import EmbeddedNats
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, TestServers, platform_database, unique
from services.commissions.handlers import definition as commissions_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition
from tests.gateway.conftest import PASSWORD, Gateway, Person


@dataclass
class Api:
    gateway: Gateway
    nats: EmbeddedNats
    token: str

    def client(self, timeout: float = 20) -> httpx.AsyncClient:
        """A program with an API token of every scope."""
        transport = httpx.ASGITransport(app=self.gateway.app)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=timeout,
                                 headers={"authorization": f"Bearer {self.token}"})

    @property
    def admin(self) -> Person:
        return self.gateway.people[Role.admin]


@pytest.fixture(scope="package")
def api_nats(tmp_path_factory: pytest.TempPathFactory, servers: TestServers) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(store_dir=tmp_path_factory.mktemp("api-nats")).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
async def api(servers: TestServers, api_nats: EmbeddedNats) -> AsyncIterator[Api]:
    db = await platform_database(servers.admin_url, unique("api_"))
    common = {"environment": "test", "secret_key": TEST_SECRET, "nats_url": api_nats.url,
              "outbox_poll_seconds": 0.2, "bus_ack_wait_seconds": 5.0}
    stop = asyncio.Event()
    services = [await start(pipeline_definition, Settings(database_url=db["pipeline"], **common), stop),
                await start(commissions_definition, Settings(database_url=db["commissions"], **common), stop),
                await start(relationships_definition, Settings(database_url=db["relationships"], **common), stop),
                # The AWS sync worker's commands (its driver, which would call AWS, is left out).
                await start(dataclasses.replace(aws_sync_definition, workers=()),
                            Settings(database_url=db["aws_sync"], **common), stop)]
    settings = Settings(database_url=db["gateway"], **common)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in Role:
                email = f"{role.value}@api.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                me = (await client.get("/api/me")).json()
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            token = new_api_token()
            async with app.state.running.sessions() as session, session.begin():
                session.add(ApiToken(name="api-tests", token_hash=digest(token), scopes=sorted(SCOPES),
                                     created_by="tests"))
            yield Api(gateway=g, nats=api_nats, token=token)
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        for s in services:
            await shutdown(s)
