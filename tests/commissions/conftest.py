"""The commissions service running in-process against its own database schema and a NATS server of the
test module's own (its stream and consumer names are fixed), plus helpers to publish revenue and wait
until the service has taken everything in."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest
from nats.aio.client import Client as NATS

from contracts import commissions as c
from contracts import pipeline as p
from contracts.base import Event
from gateway.app import create_app
from gateway.auth import Role
from gateway.users import ensure_user
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET
from services.commissions.handlers import definition as commissions_definition
from services.pipeline.handlers import definition as pipeline_definition
from tests.gateway.conftest import PASSWORD, Gateway, Person


@pytest.fixture(scope="module")
async def service(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    settings = Settings(database_url=private_db["commissions"], nats_url=private_bus.url_for("commissions"),
                        bus_ack_wait_seconds=5,
                        bus_backoff_seconds=(0.1, 0.3, 0.5), bus_max_deliver=4, outbox_poll_seconds=0.5)
    stop = asyncio.Event()
    running = await start(commissions_definition, settings, stop)
    yield running
    stop.set()
    await shutdown(running)


@pytest.fixture
async def bus_client(service: RunningService, private_nats: str) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_nats, name="test-commissions")
    yield conn
    await conn.close()


# (server, stream, subject, sequence) of everything the tests published, so `settled` knows what must have
# been seen (each test module has a NATS server of its own).
_published: list[tuple[str, str, str, int]] = []


def _server(nc: NATS) -> str:
    return f"{nc.connected_url.hostname}:{nc.connected_url.port}" if nc.connected_url else ""


async def publish(nc: NATS, event: Event, *, data: bytes | None = None, msg_id: str | None = None,
                  subject: str | None = None) -> None:
    subject = subject or event.subject
    ack = await nc.jetstream().publish(subject, data if data is not None else event.model_dump_json().encode(),
                                       headers={"Nats-Msg-Id": msg_id or str(event.event_id)})
    _published.append((_server(nc), ack.stream, subject, ack.seq))


def _matches(pattern: str, subject: str) -> bool:
    want, got = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(got) > i
        if i >= len(got) or (token != "*" and token != got[i]):
            return False
    return len(want) == len(got)


async def known_partner(nc: NATS, service: RunningService, name: str = "Known Partner") -> uuid.UUID:
    """A partner the service's copy of the pipeline knows (revenue entered by hand must name one)."""
    partner_id = uuid.uuid4()
    await publish(nc, p.PartnerCreatedV1(partner_id=partner_id, name=name, type=p.PartnerType.referral,
                                         tier=p.PartnerTier.bronze, status=p.PartnerStatus.active))
    await settled(nc, service)
    return partner_id


async def settled(nc: NATS, service: RunningService, timeout: float = 20.0) -> None:
    """Every consumer of the service has processed and acknowledged everything published so far.

    A consumer's pending count alone is not enough: the server counts a new message for its consumers
    after it has acknowledged the publish, so just after `publish` a consumer can show nothing pending
    for a message it has not seen yet. It must also have delivered the last message published for it."""
    js, here = nc.jetstream(), _server(nc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = 0
        for consumer in service.consumers:
            info = await js.consumer_info(consumer.stream, consumer.durable)
            filters = info.config.filter_subjects or [info.config.filter_subject or ">"]
            last = max((seq for server, stream, subject, seq in _published
                        if server == here and stream == consumer.stream and any(_matches(f, subject) for f in filters)),
                       default=0)
            behind += info.num_pending + info.num_ack_pending + (info.delivered.stream_seq < last)
        if behind == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the commissions service did not take in everything in time")


async def make_agreement(nc: NATS, partner_id: uuid.UUID, terms: c.Terms, *, effective_from: str = "2026-01-01",
                         direction: c.Direction = c.Direction.payable, currency: str = "USD",
                         name: str | None = None, **kw) -> c.Agreement:
    return await send(nc, c.CreateAgreement(
        partner_id=partner_id, name=name or f"agreement {uuid.uuid4().hex[:6]}", direction=direction,
        currency=currency, effective_from=date.fromisoformat(effective_from), terms=terms, actor="tester", **kw))


def flat_terms(rate: str = "10", **kw) -> c.Terms:
    return c.Terms(rate=c.FlatRate(rate=Decimal(rate)), **kw)


async def ledger(nc: NATS, partner_id: uuid.UUID) -> list[c.LedgerEntry]:
    page = await send(nc, c.ListLedgerEntries(partner_id=partner_id, limit=1000))
    return page.items


# ------------------------------------------------------------------------- the gateway in front of it


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[Gateway]:
    common = {"environment": "test", "secret_key": TEST_SECRET,
              "outbox_poll_seconds": 0.2, "bus_ack_wait_seconds": 5.0}

    def settings_of(owner: str) -> Settings:
        # Each process logs in to NATS as itself, held to its grants by the server.
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner), **common)

    stop = asyncio.Event()
    services = [await start(pipeline_definition, settings_of("pipeline"), stop),
                await start(commissions_definition, settings_of("commissions"), stop)]
    settings = settings_of("gateway")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in Role:
                email = f"{role.value}@commissions.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf)
            yield g
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        for s in services:
            await shutdown(s)


async def call(g: Gateway, role: Role, method: str, url: str, body: object = None):
    person = g.people[role]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"})


async def partner(g: Gateway, name: str | None = None) -> str:
    r = await call(g, Role.member, "POST", "/api/partners", {"name": name or f"P {uuid.uuid4().hex[:8]}",
                                                             "type": "referral", "status": "active"})
    assert r.status_code == 201, r.text
    partner_id = r.json()["id"]
    # Revenue entered by hand must name a partner the commissions service's copy knows: wait for it.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        statement = await call(g, Role.viewer, "GET", f"/api/commissions/statements/{partner_id}/2026-Q4")
        if statement.status_code == 200 and statement.json()["partner_name"]:
            return partner_id
        await asyncio.sleep(0.05)
    raise AssertionError("the commissions service did not learn of the new partner in time")


