"""The NATS server, not our code, refuses forged messages (issue 9).

Each attack that worked against an open NATS port — a fake `billing.invoice.paid.v1`, a
`cmd.commissions.ledger.approve` / `.pay` naming someone else as actor, a fake
`sync.opportunity.external.upserted.v1` — is sent with no credentials and with every other
component's credentials. The server refuses the login or the publish (its `Permissions Violation`
reaches the client's error callback), no stream gains a message and no table changes. The same
messages from the rightful component still work. Every service runs here with
their own logins, so their grants are exercised too."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import nats
import pytest
from nats.aio.client import Client as NATS

from contracts import billing, schedules, sync
from contracts import commissions as cc
from contracts.registry import STREAMS
from runtime import bus, bus_auth
from runtime.db import plain_dsn
from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.settings import Settings
from runtime.testing import TEST_SECRET, eventually
from services.commissions.handlers import definition as commissions_definition
from services.notifications.handlers import definition as notifications_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition
from tests.pipeline.helpers import external
from tests.support.bus import bus_goes_too

COMPONENTS = [name for name in bus_auth.COMPONENTS if name != bus_auth.OPERATOR]
# How long a forged publish waits for the answer a refused one never gets: the proof of the refusal is the
# server's permission error, awaited next (and the stream or store unchanged at the end), not this wait.
UNANSWERED = 0.1


def invoice() -> billing.InvoicePaidV1:
    return billing.InvoicePaidV1(invoice_id=f"INV-{uuid.uuid4().hex[:8]}", customer="Mallory Corp",
                                 partner_id=uuid.uuid4(), amount=Decimal("100000.00"), currency="USD",
                                 paid_at=datetime.now(UTC))


def forged_sync() -> sync.OpportunityExternalUpsertedV1:
    return external(name="Totally real deal", amount="9999999.00", stage="Closed Won")


# (what, subject, body, the components allowed to send it)
FORGERIES = [
    ("invoice", billing.InvoicePaidV1.subject, lambda: invoice().model_dump_json().encode(), {"billing"}),
    ("approve", cc.ApproveEntries.subject,
     lambda: cc.ApproveEntries(entry_ids=[1, 2, 3], actor="vp@example.com").model_dump_json().encode(),
     {"gateway"}),
    ("pay", cc.PayEntries.subject,
     lambda: cc.PayEntries(entry_ids=[1], paid_on=date.today(), reference="x",
                           actor="vp@example.com").model_dump_json().encode(),
     {"gateway"}),
    # The gateway holds this one subject: its HTTP integration route forwards it for API tokens.
    ("sync", sync.OpportunityExternalUpsertedV1.subject, lambda: forged_sync().model_dump_json().encode(),
     {"aws-sync", "gcp-sync", "gateway"}),
    # The AWS worker's passes are ticked by the server from the plans alone; nobody else can tick them.
    ("aws tick", schedules.AwsReconciliationDueV1.subject, lambda: b'{"schema_version": 1, "job": "aws_reconcile"}',
     set()),
    ("aws refresh", sync.RefreshAceOpportunity.subject,
     lambda: sync.RefreshAceOpportunity(catalog="AWS", opportunity_id="O1").model_dump_json().encode(), {"gateway"}),
]


@pytest.fixture(scope="module")
async def platform(private_db: dict[str, str], private_bus: EmbeddedNats) -> AsyncIterator[list[RunningService]]:
    stop = asyncio.Event()
    common = {"environment": "test", "secret_key": TEST_SECRET, "outbox_poll_seconds": 0.2,
              "bus_ack_wait_seconds": 5.0}
    running = [
        await start(definition, Settings(database_url=private_db[definition.name],
                                         nats_url=private_bus.url_for(definition.name), **common), stop)
        for definition in (pipeline_definition, commissions_definition, relationships_definition,
                           notifications_definition)
    ]
    yield running
    stop.set()
    bus_goes_too(*running)
    await asyncio.gather(*(shutdown(r) for r in running))  # side by side


async def stored(db: dict[str, str], nc: NATS) -> dict[str, int]:
    """Row counts of every table of the services and the gateway, and each stream's message count."""
    conn = await asyncpg.connect(plain_dsn(db["admin"]))
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('pipeline', 'commissions', 'gateway')"
        )
        counts = {f"{t['schemaname']}.{t['tablename']}": await conn.fetchval(
            f'SELECT count(*) FROM "{t["schemaname"]}"."{t["tablename"]}"') for t in tables}
    finally:
        await conn.close()
    js = nc.jetstream()
    for spec in STREAMS:
        counts[f"stream {spec.name}"] = (await js.stream_info(spec.name)).state.messages
    return counts


class Client:
    """A plain nats-py client that keeps what the server told it went wrong."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def connect(self, url: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False, connect_timeout=2,
                                     inbox_prefix=bus.inbox_prefix(url))
        return self

    async def refused(self, subject: str) -> bool:
        expected = f'permissions violation for publish to "{subject}"'
        return await eventually(lambda: any(expected in e.lower() for e in self.errors), timeout=5,
                                what=f"the server to refuse a publish to {subject}")

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()


async def test_no_credentials_or_a_wrong_password_is_refused_at_login(private_bus: EmbeddedNats) -> None:
    pipeline_password = private_bus.users["pipeline"]  # type: ignore[index]
    wrong = [
        private_bus.anonymous_url,
        bus_auth.url_with_user(private_bus.anonymous_url, "commissions", pipeline_password),  # someone else's
        bus_auth.url_with_user(private_bus.anonymous_url, "billing", "guess"),
    ]
    for url in wrong:
        with pytest.raises(PermissionError, match="Authorization Violation"):
            await bus.connect(url, name="intruder", attempts=1)
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(url, allow_reconnect=False, connect_timeout=2)


@pytest.mark.parametrize(("what", "subject", "body", "allowed"), FORGERIES, ids=[f[0] for f in FORGERIES])
async def test_a_forged_message_from_any_other_component_is_refused_by_the_server(
    platform: list[RunningService], private_db: dict[str, str], private_bus: EmbeddedNats, nc_operator: NATS,
    what: str, subject: str, body, allowed: set[str],
) -> None:
    before = await stored(private_db, nc_operator)
    for component in COMPONENTS:
        if component in allowed:
            continue
        client = await Client().connect(private_bus.url_for(component))
        try:
            assert client.nc is not None
            if subject.startswith("cmd."):
                with pytest.raises(nats.errors.TimeoutError):
                    await client.nc.request(subject, body(), timeout=UNANSWERED)
            else:
                with pytest.raises(nats.errors.TimeoutError):
                    await client.nc.jetstream().publish(subject, body(), timeout=UNANSWERED)
            assert await client.refused(subject), f"{component} was not refused {subject}: {client.errors}"
        finally:
            await client.close()
    assert await stored(private_db, nc_operator) == before


async def test_no_other_component_can_answer_or_overhear_a_service_s_commands(
    platform: list[RunningService], private_bus: EmbeddedNats,
) -> None:
    expected = 'permissions violation for subscription to "cmd.commissions.>"'
    for component in ("pipeline", "gateway", "relationships", "aws-sync", "billing"):
        client = await Client().connect(private_bus.url_for(component))
        try:
            assert client.nc is not None
            await client.nc.subscribe("cmd.commissions.>", cb=_ignore)
            await client.nc.flush()
            await eventually(lambda c=client: asyncio.sleep(0, any(expected in e.lower() for e in c.errors)),
                             timeout=5, what=f"{component}'s subscription refused")
        finally:
            await client.close()


async def test_the_rightful_component_s_messages_still_work(
    platform: list[RunningService], private_db: dict[str, str], private_bus: EmbeddedNats,
) -> None:
    admin = private_db["admin"]

    async def in_inbox(schema: str, event_id: uuid.UUID) -> bool:
        conn = await asyncpg.connect(plain_dsn(admin))
        try:
            return bool(await conn.fetchval(f"SELECT count(*) FROM {schema}.inbox WHERE event_id = $1", event_id))
        finally:
            await conn.close()

    # The billing publisher's invoice reaches the commissions service.
    billing_nc = await bus.connect(private_bus.url_for("billing"), name="billing", attempts=1)
    paid = invoice()
    await billing_nc.jetstream().publish(paid.subject, paid.model_dump_json().encode(),
                                         headers={"Nats-Msg-Id": str(paid.event_id)})
    await billing_nc.close()
    await eventually(lambda: in_inbox("commissions", paid.event_id), what="the invoice consumed")
    # What it changed is recorded as done by the producer the server authenticated, not by any name
    # in the payload (its `source` label is the producer's own claim).
    conn = await asyncpg.connect(plain_dsn(admin))
    try:
        assert await conn.fetchval("SELECT actor FROM commissions.revenue_event WHERE event_id = $1",
                                   paid.event_id) == "bus:billing"
    finally:
        await conn.close()

    # A sync worker's opportunity reaches the pipeline.
    for worker in ("aws-sync", "gcp-sync"):
        worker_nc = await bus.connect(private_bus.url_for(worker), name=worker, attempts=1)
        upserted = external(source="aws" if worker == "aws-sync" else "gcp")
        await worker_nc.jetstream().publish(upserted.subject, upserted.model_dump_json().encode(),
                                            headers={"Nats-Msg-Id": str(upserted.event_id)})
        await worker_nc.close()
        await eventually(lambda e=upserted: in_inbox("pipeline", e.event_id), what=f"{worker}'s event consumed")

    # The gateway's commands are answered (here: entries that do not exist).
    gateway_nc = await bus.connect(private_bus.url_for("gateway"), name="gateway", attempts=1)
    try:
        reply = await gateway_nc.request(cc.ApproveEntries.subject,
                                         cc.ApproveEntries(entry_ids=[999999]).model_dump_json().encode(),
                                         timeout=10)
        assert "ok" in json.loads(reply.data)
    finally:
        await gateway_nc.close()


async def _ignore(msg: object) -> None:
    pass


@pytest.fixture
async def nc_operator(private_bus: EmbeddedNats) -> AsyncIterator[NATS]:
    conn = await bus.connect(private_bus.url, name="test-operator", attempts=1)
    yield conn
    await conn.close()


def test_the_authenticated_producer_of_each_stream_is_the_one_user_that_may_publish_it() -> None:
    from contracts.registry import EVENTS

    alone = {"PIPELINE": "pipeline", "COMMISSIONS": "commissions", "BILLING": "billing",
             "RELATIONSHIPS": "relationships"}
    for event in EVENTS:
        if event.stream.name == schedules.STREAM.name:
            continue  # ticks the NATS server fires itself, from plans (contracts/schedules.py)
        found = bus_auth.producers(event.subject)
        assert found, f"no component may publish {event.subject}"
        if event.stream.name in alone:
            assert bus_auth.authenticated_producer(event.subject) == f"bus:{alone[event.stream.name]}", event.subject
    # The one shared subject: the sync workers and the gateway's integration route (which audits the token).
    assert set(bus_auth.producers(sync.OpportunityExternalUpsertedV1.subject)) == {"aws-sync", "gcp-sync", "gateway"}
    assert bus_auth.subject_matches("a.>", "a.b.c") and not bus_auth.subject_matches("a.>", "a")
    assert bus_auth.subject_matches("a.*.c", "a.b.c") and not bus_auth.subject_matches("a.*", "a.b.c")


def test_the_security_doc_lists_every_nats_user() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    table = doc.split("## NATS users and permissions", 1)[1].split("\n## ", 1)[0]
    assert [name for name in bus_auth.COMPONENTS if f"`{name}`" not in table] == []
