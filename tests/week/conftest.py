"""The relationships service running in-process against its own database schema and a NATS server of the
test module's own, with helpers to feed it pipeline events and to send it week commands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from nats.aio.client import Client as NATS

from contracts import pipeline as p
from contracts import week as w
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from services.relationships.handlers import definition
from tests.support.bus import bus_goes_too


@pytest.fixture(scope="module")
async def service(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    settings = Settings(database_url=private_db["relationships"], nats_url=private_bus.url_for("relationships"),
                        bus_ack_wait_seconds=5, bus_backoff_seconds=(0.1, 0.3, 0.5), bus_max_deliver=4,
                        outbox_poll_seconds=0.5)
    stop = asyncio.Event()
    running = await start(definition, settings, stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def nc(service: RunningService, private_nats: str) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_nats, name="test-week")
    yield conn
    await conn.close()


def member() -> str:
    return str(uuid.uuid4())


def opportunity(owner: str | None, *, version: int = 1, stage: str = "Qualified", outcome: p.Outcome = p.Outcome.open,
                created_at: datetime, stage_entered_at: datetime | None = None, close: date | None = None,
                amount: str = "1000.00", partner_id: uuid.UUID | None = None, ace: p.AceState | None = None,
                opportunity_id: uuid.UUID | None = None, name: str | None = None) -> p.Opportunity:
    oid = opportunity_id or uuid.uuid4()
    return p.Opportunity(
        id=oid, version=version, name=name or f"deal {oid.hex[:6]}", pipeline="cosell", stage=stage.lower(),
        stage_name=stage, probability=20, outcome=outcome, partner_id=partner_id, customer="Acme",
        amount=Decimal(amount), currency="USD", expected_close_date=close, owner=owner,
        deal_model=p.DealModel.cosell, source=p.Source.manual, ace=ace, created_at=created_at,
        updated_at=stage_entered_at or created_at, stage_entered_at=stage_entered_at or created_at)


async def open_week(nc: NATS, at: datetime | None = None, *, tz: str = "America/New_York",
                    attendees: list[w.Attendee] | None = None) -> w.Meeting:
    return await send(nc, w.OpenWeek(at=at, default_time_zone=tz, attendees=attendees or [], actor="tester"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def days(n: int) -> timedelta:
    return timedelta(days=n)


WEEK_TABLES = ("task_carry", "task", "update_revision", "update_line", "weekly_update", "meeting_decision",
               "meeting_attendee", "meeting", "week_settings", "pipeline_deal_change", "pipeline_deal",
               "pipeline_partner", "pipeline_settings", "deadline")


@pytest.fixture
async def fresh(private_db: dict[str, str], service: RunningService) -> None:
    """Weeks, tasks and the pipeline copy are the whole team's: each test starts from none of them."""
    import asyncpg

    from runtime.db import plain_dsn

    conn = await asyncpg.connect(plain_dsn(private_db["admin"]))
    try:
        await conn.execute("TRUNCATE " + ", ".join(f"relationships.{t}" for t in WEEK_TABLES))
    finally:
        await conn.close()


# ------------------------------------------------------------------------- the gateway in front of it


@pytest.fixture(scope="module")
async def gw(private_db: dict[str, str], private_bus: EmbeddedNats):
    """The gateway in-process with the pipeline and relationships services, people of every role signed in."""
    from gateway.app import create_app
    from gateway.auth import STAFF_ROLES, Role
    from gateway.users import ensure_user
    from runtime.testing import TEST_SECRET
    from services.pipeline.handlers import definition as pipeline_definition
    from tests.support.gateway import PASSWORD, Gateway, Person

    common = {"environment": "test", "secret_key": TEST_SECRET, "outbox_poll_seconds": 0.2,
              "bus_ack_wait_seconds": 5.0}

    def settings_of(owner: str) -> Settings:
        return Settings(database_url=private_db[owner], nats_url=private_bus.url_for(owner), **common)

    stop = asyncio.Event()
    services = [await start(pipeline_definition, settings_of("pipeline"), stop),
                await start(definition, settings_of("relationships"), stop)]
    settings = settings_of("gateway")
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            g = Gateway(app=app, settings=settings)
            for role in STAFF_ROLES:
                email = f"{role.value}@week.test"
                await ensure_user(settings, email=email, name=f"The {role.value}", role=role, password=PASSWORD)
                client, csrf = await g.sign_in(email)
                me = (await client.get("/api/me")).json()
                g.people[role] = Person(role=role, email=email, client=client, csrf=csrf, id=me["id"])
            email = "member2@week.test"
            await ensure_user(settings, email=email, name="Second member", role=Role.member, password=PASSWORD)
            client, csrf = await g.sign_in(email)
            me = (await client.get("/api/me")).json()
            g.people["member2"] = Person(role=Role.member, email=email, client=client, csrf=csrf, id=me["id"])  # type: ignore[index]
            yield g
            bus_goes_too(app.state.running)
            for person in g.people.values():
                await person.client.aclose()
    finally:
        stop.set()
        bus_goes_too(*services)
        await asyncio.gather(*(shutdown(s) for s in services))  # side by side


async def call(g, who, method: str, url: str, body: object = None):
    person = g.people[who]
    return await person.client.request(method, url, json=body, headers={"x-csrf-token": person.csrf,
                                                                          "accept": "application/json"})
