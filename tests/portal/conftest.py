"""The gateway with the pipeline, commissions and relationships services in-process on this package's own database
and NATS server; people of every team role, and two partner organisations A and B, each with a
partner user, a deal, a registration and commission entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from gateway.auth import Role
from runtime.embedded import EmbeddedNats
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually
from services.commissions.handlers import definition as commissions_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition
from tests.portal.helpers import Org, call, certified_people, make_org
from tests.support.gateway import TEST_SETTINGS, Gateway, gateway_with_services


@dataclass
class Portal:
    gateway: Gateway
    a: Org
    b: Org


@pytest.fixture(scope="module")
async def portal(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Portal]:
    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner),
                        secret_key=TEST_SECRET, **TEST_SETTINGS)

    async with gateway_with_services(settings_of, [pipeline_definition, commissions_definition,
                                                relationships_definition],
                                     "portal.test") as gw:
        owner = gw.people[Role.member]
        a, b = await make_org(gw, "Alpha", owner=owner), await make_org(gw, "Bravo", owner=owner)
        portal = Portal(gateway=gw, a=a, b=b)

        async def planned() -> bool:
            return (await call(portal.a.user, "GET", "/api/portal/onboarding")).json() is not None

        await eventually(planned, "A's onboarding plan")
        await certified_people(gw, [a, b])
        yield portal
