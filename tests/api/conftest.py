"""The whole HTTP API in front of real services: the gateway app with its real lifespan, the pipeline
commissions and relationships services in-process, on a NATS server and a database of this package's own (the
tests may stop that NATS server); an API token holding every scope and people of every role signed
in through the real sign-in form (session cookie + CSRF token)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from gateway.auth import SCOPES, Role, digest, new_api_token
from gateway.models import ApiToken
from integrations.aws_partner_central.handlers import definition as aws_sync_definition
from runtime.embedded import EmbeddedNats
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, TestServers, platform_database, unique
from services.commissions.handlers import definition as commissions_definition
from services.notifications.handlers import definition as notifications_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition
from tests.support.gateway import TEST_SETTINGS, Gateway, Person, gateway_with_services


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

    def settings_of(owner: str) -> Settings:
        return Settings(database_url=db[owner], nats_url=api_nats.url, secret_key=TEST_SECRET, **TEST_SETTINGS)

    # notifications: alerts, preferences and deliveries answer for real (no SMTP: emails wait as pending).
    services = [pipeline_definition, commissions_definition, relationships_definition, notifications_definition,
                # The AWS sync worker's commands (its driver, which would call AWS, is left out).
                dataclasses.replace(aws_sync_definition, workers=())]
    async with gateway_with_services(settings_of, services, "api.test") as g:
        token = new_api_token()
        async with g.app.state.running.sessions() as session, session.begin():
            session.add(ApiToken(name="api-tests", token_hash=digest(token), scopes=sorted(SCOPES),
                                 created_by="tests"))
        yield Api(gateway=g, nats=api_nats, token=token)
