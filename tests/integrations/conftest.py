"""The integrations' servers: a NATS and a migrated database of their own, the pipeline service
in-process (deals land where they would in production), and the AWS side played by botocore's
Stubber, which checks every call and every answer against the real `partnercentral-selling` model."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

import pytest
from botocore.stub import Stubber

from integrations.aws_partner_central.client import PartnerCentral, make_client
from integrations.aws_partner_central.handlers import definition as aws_definition
from integrations.aws_partner_central.settings import AwsSyncSettings
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.testing import TestServers, platform_database, prepare_streams, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.pipeline.helpers import settings_for
from tests.support.bus import bus_goes_too

CATALOG = "Sandbox"


def aws_settings(**overrides: object) -> AwsSyncSettings:
    values: dict[str, object] = {"catalog": CATALOG, "overlap_seconds": 60, "poll_seconds": 0.2, "page_size": 2}
    values.update(overrides)
    return AwsSyncSettings(**values)  # type: ignore[arg-type]


def new_catalog() -> str:
    """A catalog name of the test's own: cursors, versions and problems are kept per catalog, so tests
    sharing the worker's schema do not see each other's (the model allows any letters)."""
    return "Test" + "".join(chr(ord("a") + int(c, 16) % 26) for c in unique("")[:10])


def stubbed(catalog: str | None = None) -> tuple[PartnerCentral, Stubber]:
    client = make_client(aws_settings(), aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret")
    stubber = Stubber(client)
    stubber.activate()
    return PartnerCentral(client, catalog or new_catalog()), stubber


@pytest.fixture(scope="package")
def sync_bus(tmp_path_factory: pytest.TempPathFactory, servers: TestServers) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(store_dir=tmp_path_factory.mktemp("sync-nats")).start()
    try:
        prepare_streams(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
async def sync_db(servers: TestServers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("sy_"))


@pytest.fixture(scope="package")
async def pipeline(sync_db: dict[str, str], sync_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(pipeline_definition, settings_for(sync_db["pipeline"], sync_bus.url_for("pipeline")), stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture(scope="package")
async def aws_shell(sync_db: dict[str, str], sync_bus: EmbeddedNats,
                    pipeline: RunningService) -> AsyncIterator[RunningService]:
    """The AWS worker's service shell (relay, commands) as `aws-sync`, without its own tasks: tests
    drive passes themselves so the Stubber's queue of answers is theirs alone."""
    stop = asyncio.Event()
    shell = dataclasses.replace(aws_definition, workers=())
    running = await start(shell, settings_for(sync_db["aws_sync"], sync_bus.url_for("aws-sync")), stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)
