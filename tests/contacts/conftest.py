"""The relationships package's servers: a NATS and a migrated database of its own (service streams and
consumer names are fixed), the relationships service running in-process, and helpers that publish the
pipeline's events as the pipeline would and wait until the service has taken them in.

Tests share these servers, so each works on organisations and contacts of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from nats.aio.client import Client as NATS

from contracts import contacts as c
from contracts import pipeline as p
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, TestServers, eventually, platform_database, prepare_streams, unique
from services.relationships.handlers import definition
from tests.support.bus import bus_goes_too, publish, settled


def settings_for(db_url: str, nats_url: str) -> Settings:
    return Settings(environment="test", secret_key=TEST_SECRET, database_url=db_url, nats_url=nats_url,
                    log_format="text", bus_ack_wait_seconds=5, bus_backoff_seconds=(0.1, 0.2, 0.5),
                    bus_max_deliver=3, outbox_poll_seconds=0.2, bus_fetch_batch=64)


@pytest.fixture(scope="package")
def rel_bus(tmp_path_factory: pytest.TempPathFactory, servers: TestServers) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(store_dir=tmp_path_factory.mktemp("relationships-nats")).start()
    try:
        prepare_streams(server.url)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="package")
async def rel_db(servers: TestServers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("rel_"))


@pytest.fixture(scope="package")
async def rel_service(rel_db: dict[str, str], rel_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(definition, settings_for(rel_db["relationships"], rel_bus.url_for("relationships")), stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def nc(rel_bus: EmbeddedNats, rel_service: RunningService) -> AsyncIterator[NATS]:
    """The operator's login: tests publish as the pipeline would and send commands as the gateway."""
    conn = await bus.connect(rel_bus.url, name="relationships-test")
    yield conn
    await conn.close()


async def organisation(nc: NATS, service: RunningService, name: str | None = None,
                       kind: p.PartnerType = p.PartnerType.hyperscaler, owner: str | None = None) -> uuid.UUID:
    partner_id = uuid.uuid4()
    await publish(nc, p.PartnerCreatedV1(partner_id=partner_id, name=name or f"Org {uuid.uuid4().hex[:8]}", type=kind,
                                         tier=p.PartnerTier.gold, status=p.PartnerStatus.active, owner=owner))
    await settled(nc, service)
    return partner_id


def opportunity(partner_id: uuid.UUID | None, amount: str = "10000.00", *, version: int = 1,
                outcome: p.Outcome = p.Outcome.open, currency: str = "USD", owner: str | None = None,
                ace: p.AceState | None = None, opportunity_id: uuid.UUID | None = None) -> p.Opportunity:
    now = datetime.now(UTC)
    return p.Opportunity(
        id=opportunity_id or uuid.uuid4(), version=version, name=f"Deal {uuid.uuid4().hex[:6]}", pipeline="cosell",
        stage="qualified", stage_name="Qualified", probability=20, outcome=outcome, partner_id=partner_id,
        customer="Acme", amount=Decimal(amount), currency=currency, expected_close_date=None, owner=owner,
        deal_model=p.DealModel.cosell, source=p.Source.manual, ace=ace, created_at=now, updated_at=now,
        stage_entered_at=now)


async def contact(nc: NATS, partner_id: uuid.UUID, **kw) -> c.Contact:
    kw.setdefault("name", f"Person {uuid.uuid4().hex[:6]}")
    return await send(nc, c.CreateContact(partner_id=partner_id, actor="tester", **kw))


async def log(nc: NATS, contact_ids: list[uuid.UUID], at: datetime, kind: c.InteractionKind = c.InteractionKind.meeting,
              **kw) -> c.Interaction:
    return await send(nc, c.LogInteraction(kind=kind, occurred_at=at, contact_ids=tuple(contact_ids), actor="tester",
                                           **kw))


# ------------------------------------------------------------------------- the gateway in front of it


@pytest.fixture(scope="package")
async def gw(rel_db: dict[str, str], rel_bus: EmbeddedNats, rel_service: RunningService):
    """The gateway and the pipeline service beside the relationships service, each logged in to NATS as
    itself; a signed-in person of every role (with their user id)."""
    from gateway.app import create_app
    from gateway.auth import STAFF_ROLES
    from gateway.users import ensure_user
    from services.pipeline.handlers import definition as pipeline_definition
    from tests.support.gateway import PASSWORD, Gateway, Person

    stop = asyncio.Event()
    pipeline = await start(pipeline_definition, settings_for(rel_db["pipeline"], rel_bus.url_for("pipeline")), stop)
    settings = settings_for(rel_db["gateway"], rel_bus.url_for("gateway"))
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in STAFF_ROLES:
                email = f"{role.value}@contacts.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                me = (await client.get("/api/me")).json()
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            yield g
            bus_goes_too(app.state.running)
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        bus_goes_too(pipeline)
        await shutdown(pipeline)


async def call(g, role, method: str, url: str, body: object = None, **kw):
    person = g.people[role]
    headers = {"x-csrf-token": person.csrf, "accept": "application/json", **kw.pop("headers", {})}
    if isinstance(body, str | bytes):
        return await person.client.request(method, url, content=body, headers=headers, **kw)
    return await person.client.request(method, url, json=body, headers=headers, **kw)


async def partner_via_api(g, rel_service: RunningService, name: str | None = None) -> str:
    """A partner created through the gateway, once the relationships service's copy knows it."""
    from gateway.auth import Role

    r = await call(g, Role.member, "POST", "/api/partners", {"name": name or f"P {uuid.uuid4().hex[:8]}",
                                                             "type": "hyperscaler", "status": "active"})
    assert r.status_code == 201, r.text
    partner_id = r.json()["id"]

    async def known() -> httpx.Response | None:
        probe = await call(g, Role.member, "POST", "/api/contacts", {"partner_id": partner_id, "name": "Probe"})
        return probe if probe.status_code == 201 else None

    probe = await eventually(known, "the relationships service to learn of the new partner")
    await call(g, Role.member, "PATCH", f"/api/contacts/{probe.json()['id']}", {"archived": True})
    return partner_id
