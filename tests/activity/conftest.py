"""The gateway with the pipeline, commissions and relationships services in-process, on this module's own
database and NATS server; people of every team role signed in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runtime.embedded import EmbeddedNats
from runtime.settings import Settings
from runtime.testing import TEST_SECRET
from services.commissions.handlers import definition as commissions_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition
from tests.support.gateway import TEST_SETTINGS, Gateway, gateway_with_services


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner),
                        secret_key=TEST_SECRET, **TEST_SETTINGS)

    async with gateway_with_services(settings_of, [pipeline_definition, commissions_definition,
                                                relationships_definition], "activity.test") as g:
        yield g
