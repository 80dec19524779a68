"""The notifications service in-process against its own schema, a NATS server of the module's own, and
a real SMTP server (runtime.mailbox, aiosmtpd) that keeps what it receives; helpers to publish the
pipeline's events, tick the schedule and read feeds, deliveries and the mailbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client as NATS

from contracts import contacts as ct
from contracts import deadlines as dl
from contracts import notifications as n
from contracts import pipeline as p
from contracts import schedules as s
from contracts import week as w
from contracts.base import Event
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.mailbox import LocalMailbox
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from services.notifications.handlers import definition
from tests.support.bus import (
    bus_goes_too,
    settled,  # noqa: F401  (this package's tests wait with it)
)
from tests.support.bus import publish as recorded_publish

ADMIN = "u-admin"
MANAGER = "u-manager"
OWNER = "u-owner"
MEMBER = "u-member"
PEOPLE = [
    n.Member(user_id=ADMIN, email="vp@example.test", name="Vera VP", role=n.Role.admin,
             time_zone="America/Los_Angeles"),
    n.Member(user_id=MANAGER, email="manager@example.test", name="Max Manager", role=n.Role.manager,
             time_zone="Europe/Berlin"),
    n.Member(user_id=OWNER, email="owner@example.test", name="Olga Owner", role=n.Role.member),
    n.Member(user_id=MEMBER, email="member@example.test", name="Mo Member", role=n.Role.member),
]


def settings_for(db: dict[str, str], nats: EmbeddedNats, smtp_url: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db["notifications"], "nats_url": nats.url_for("notifications"), "smtp_url": smtp_url,
        "bus_ack_wait_seconds": 5, "bus_backoff_seconds": (0.1, 0.3, 0.5), "bus_max_deliver": 4,
        "smtp_poll_seconds": 0.1, "smtp_backoff_seconds": (0.2, 0.4), "smtp_max_attempts": 4,
        "public_url": "https://partnerops.example.test"}
    return Settings(**(values | kw))


@pytest.fixture(scope="module")
async def mailbox() -> AsyncIterator[LocalMailbox]:
    box = await LocalMailbox().start()
    yield box
    await box.stop()


@pytest.fixture(scope="module")
async def service(private_db: dict[str, str], private_bus: EmbeddedNats,
                  mailbox: LocalMailbox) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(definition, settings_for(private_db, private_bus, mailbox.url), stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


@pytest.fixture
async def bus_client(service: RunningService, private_nats: str) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_nats, name="test-notifications")
    await send(conn, n.SyncPeople(people=PEOPLE))
    yield conn
    await conn.close()


async def publish(nc: NATS, event: Event, *, data: bytes | None = None, subject: str | None = None) -> None:
    # Recorded, so `settled` knows the sequence each consumer must reach (see its docstring).
    await recorded_publish(nc, event, data=data, subject=subject, msg_id=str(uuid.uuid4()))


def deal(*, owner: str | None = OWNER, stage: str = "proposal", stage_name: str = "Proposal",
         entered: datetime | None = None, amount: str = "12000.00", currency: str = "USD", version: int = 1,
         ace: p.AceState | None = None, deal_id: uuid.UUID | None = None, name: str | None = None,
         outcome: p.Outcome = p.Outcome.open) -> p.Opportunity:
    at = entered or datetime.now(UTC)
    return p.Opportunity(
        id=deal_id or uuid.uuid4(), version=version, name=name or f"Deal {uuid.uuid4().hex[:6]}", pipeline="resale",
        stage=stage, stage_name=stage_name, probability=50, outcome=outcome, partner_id=None,
        customer=f"Customer {uuid.uuid4().hex[:4]}", amount=Decimal(amount), currency=currency,
        expected_close_date=None, owner=owner, deal_model=p.DealModel.resale, source=p.Source.manual, ace=ace,
        created_at=at, updated_at=at, stage_entered_at=at)


def won(opportunity_id: uuid.UUID, amount: str, *, owner: str | None = OWNER, currency: str = "USD",
        customer: str = "Acme Corp") -> p.OpportunityWonV1:
    return p.OpportunityWonV1(opportunity_id=opportunity_id, partner_id=None, amount=Decimal(amount),
                              currency=currency, deal_model=p.DealModel.resale, customer=customer, owner=owner,
                              pipeline="resale", source=p.Source.manual, won_at=datetime.now(UTC))


def deadline(*, due: date | None = None, kind: dl.DeadlineKind = dl.DeadlineKind.fund_claim_due, version: int = 1,
             status: dl.DeadlineStatus = dl.DeadlineStatus.open, key: str | None = None,
             owner: str | None = OWNER) -> dl.Deadline:
    due = due or (datetime.now(UTC) + timedelta(days=2)).date()
    request = uuid.uuid4()
    return dl.Deadline(key=key or f"fund_request:{request}:{kind.value}", kind=kind, status=status,
                       title=f"MAP claim {request.hex[:6]}", due_date=due, time_zone="America/Los_Angeles",
                       due_at=dl.end_of_day(due, "America/Los_Angeles"), regarding=dl.Regarding.fund_request,
                       regarding_id=request, link=f"/funding/{request}", owner=owner,
                       amount_at_stake=Decimal("25000.00"), currency="USD", version=version)


def carried(times: int, *, owner: str = OWNER) -> w.TaskCarriedV1:
    task = w.Task(id=uuid.uuid4(), owner=owner, title=f"Send the MDF proposal {uuid.uuid4().hex[:4]}",
                  due_date=date(2026, 11, 20), status=w.TaskStatus.open, week=date(2026, 11, 30),
                  first_week=date(2026, 11, 9), carried=times, created_by=owner,
                  created_at=datetime(2026, 11, 9, tzinfo=UTC), version=times + 1)
    return w.TaskCarriedV1(task=task, from_week=date(2026, 11, 23), to_week=date(2026, 11, 30))


def cooling(days: int = 5, *, owner: str | None = OWNER, contact_id: uuid.UUID | None = None) -> ct.ContactCoolingV1:
    contact_id = contact_id or uuid.uuid4()
    now = datetime.now(UTC)
    return ct.ContactCoolingV1(contact_id=contact_id, contact_name=f"Pat PDM {contact_id.hex[:4]}",
                               partner_id=uuid.uuid4(), partner_name="AWS", owner=owner, score=42, cold_threshold=30,
                               cold_at=now + timedelta(days=days), days_until_cold=days,
                               last_touch_at=now - timedelta(days=40), value_at_stake=Decimal("180000.00"),
                               currency="USD", link=f"/contacts/{contact_id}")


def tick(at: datetime) -> s.HourlyTickV1:
    """A new firing of the hourly schedule, scanning as of `at`. Each call is a distinct firing with an id of
    its own: the id the consumer derives from the stored time has a one-second grain, and two tests a moment
    apart would otherwise publish the same id and have the second tick folded away as a duplicate. A
    redelivery is the same tick object published again."""
    return s.HourlyTickV1(job="hourly", occurred_at=at)


async def feed(nc: NATS, user_id: str) -> n.Feed:
    return await send(nc, n.ListFeed(user_id=user_id, limit=200))


async def deliveries(nc: NATS, **kw: Any) -> list[n.Delivery]:
    return (await send(nc, n.ListDeliveries(limit=200, **kw))).items


def mails_about(box: LocalMailbox, text: str) -> list[Any]:
    return [m for m in box.sink.messages if text in str(m["Subject"])]
