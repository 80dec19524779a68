"""Replies and dead letters stay with their component (issue 9).

Each NATS user has a reply prefix of its own, `_INBOX_<user>`, and may subscribe only to it: a
component that subscribes to another's inbox (or to the shared `_INBOX.>`) is refused by the server
and overhears nothing. Each consumer may park dead letters only under its own consumer name,
`deadletter.<consumer>.>`: a letter forged under another service's consumer is refused by the
server. And what a component may park under its own name is not trusted either: replay publishes
only a message its stream really holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from contracts import billing
from contracts import deadletters as dl
from gateway import read_models
from integrations.aws_partner_central.handlers import definition as aws_definition
from runtime import bus, bus_auth, deadletter
from runtime.embedded import EmbeddedNats
from runtime.testing import eventually
from services.commissions.handlers import definition as commissions_definition
from services.notifications.handlers import definition as notifications_definition
from services.pipeline.handlers import definition as pipeline_definition
from services.relationships.handlers import definition as relationships_definition

# How long a forged publish waits for the answer a refused one never gets: the proof of the refusal is the
# server's permission error, awaited next (and the stream or store unchanged at the end), not this wait.
UNANSWERED = 0.1

COMPONENTS = [name for name in bus_auth.COMPONENTS if name != bus_auth.OPERATOR]


class Client:
    """A component's connection (through runtime.bus, so with its own inbox prefix) that keeps what
    the server said it refused."""

    def __init__(self, bus_: EmbeddedNats, user: str) -> None:
        self.url, self.user = bus_.url_for(user), user
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def __aenter__(self) -> NATS:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc).lower())

        self.nc = await nats.connect(self.url, error_cb=on_error, allow_reconnect=False, connect_timeout=2,
                                     inbox_prefix=bus.inbox_prefix(self.url))
        return self.nc

    async def __aexit__(self, *exc: object) -> None:
        if self.nc is not None:
            await self.nc.close()

    async def refused(self, what: str, subject: str) -> bool:
        expected = f'permissions violation for {what} to "{subject.lower()}"'

        async def seen() -> bool:
            return any(expected in e for e in self.errors)

        try:
            await eventually(seen, timeout=5, what=f"{self.user} refused {what} to {subject}")
        except AssertionError:
            return False
        return True


def test_every_connection_takes_its_user_s_inbox_prefix() -> None:
    url = bus_auth.url_with_user("nats://127.0.0.1:4222,nats://10.0.0.2:4222", "aws-sync", "p@ss/word")
    assert bus.inbox_prefix(url) == "_INBOX_aws-sync"
    assert bus.inbox_prefix("nats://127.0.0.1:4222") == "_INBOX"
    for name, component in bus_auth.COMPONENTS.items():
        allowed = bus_auth.permissions(component)["subscribe"]["allow"]  # type: ignore[index]
        inboxes = [s for s in allowed if s.startswith("_INBOX")]
        assert inboxes == ([] if component.superuser else [f"_INBOX_{name}.>"]), name


async def test_no_component_can_read_another_s_replies(private_bus: EmbeddedNats) -> None:
    """The gateway asks the commissions user something; every other component tries to listen to the
    gateway's inbox (and to the shared `_INBOX.>`): the server refuses each subscription, the answer
    reaches the gateway alone."""
    async def echo(msg: Msg) -> None:
        await msg.respond(b"the answer")

    async with Client(private_bus, "commissions") as responder, Client(private_bus, "gateway") as asker:
        await responder.subscribe("cmd.commissions.test.echo", cb=echo)
        await responder.flush()
        overheard: list[bytes] = []

        async def listen(msg: Msg) -> None:
            overheard.append(msg.data)

        listeners = []
        for component in COMPONENTS:
            listener = Client(private_bus, component)
            nc = await listener.__aenter__()
            listeners.append(listener)
            victims = [bus_auth.inbox_prefix(c) for c in COMPONENTS if c != component] + ["_INBOX"]
            for prefix in victims:
                await nc.subscribe(f"{prefix}.>", cb=listen)
            await nc.flush()
        try:
            reply = await asker.request("cmd.commissions.test.echo", b"?", timeout=10)
            assert reply.data == b"the answer"
            assert reply.subject.startswith("_INBOX_gateway.")
            for listener in listeners:
                for component in COMPONENTS:
                    if component != listener.user:
                        assert await listener.refused("subscription", f"{bus_auth.inbox_prefix(component)}.>"), \
                            f"{listener.user} may subscribe to {component}'s inbox: {listener.errors}"
                assert await listener.refused("subscription", "_INBOX.>"), listener.errors
                # Its own inbox is its own: no refusal for it.
                assert not any(f'"{bus_auth.inbox_prefix(listener.user).lower()}.>"' in e for e in listener.errors)
            assert overheard == []
        finally:
            for listener in listeners:
                await listener.__aexit__()


def test_every_subscription_parks_under_a_consumer_its_user_may_publish() -> None:
    """The runtime parks a subscription's letters under `deadletter.<consumer>.<key>`: the process
    running it must hold that consumer's grant, else its dead letters would be refused."""
    owners = {"gateway": read_models.SUBSCRIPTIONS, "aws-sync": aws_definition.subscriptions,
              **{d.name: d.subscriptions for d in (pipeline_definition, commissions_definition,
                                                   relationships_definition, notifications_definition)}}
    for owner, subscriptions in owners.items():
        grants = bus_auth.permissions(bus_auth.COMPONENTS[owner])["publish"]["allow"]  # type: ignore[index]
        for sub in subscriptions:
            for key in (sub.inbox_key, f"{sub.consumer}__{sub.stream}"):
                subject = dl.subject_for(key)
                assert subject.startswith(f"deadletter.{sub.consumer}.")
                assert dl.subjects_of(sub.consumer) in grants, f"{owner} may not park {subject}"


@pytest.fixture
async def operator(private_bus: EmbeddedNats) -> AsyncIterator[NATS]:
    nc = await bus.connect(private_bus.url, name="test-operator", attempts=1)
    yield nc
    await nc.close()


async def test_a_forged_dead_letter_under_another_consumer_is_refused(private_bus: EmbeddedNats,
                                                                      operator: NATS) -> None:
    js = operator.jetstream()
    before = (await js.stream_info(dl.STREAM.name)).state.messages
    consumers = {c: bus_auth.COMPONENTS[c].dead_letter_consumers for c in COMPONENTS}
    assert consumers["commissions"] == ("commissions",) and consumers["billing"] == ()
    for component in COMPONENTS:
        for victim in {v for owned in consumers.values() for v in owned} - set(consumers[component]):
            client = Client(private_bus, component)
            async with client as nc:
                subject = dl.subject_for(f"{victim}__billing_invoice_paid_v1")
                with pytest.raises(nats.errors.TimeoutError):
                    await nc.jetstream().publish(subject, b"{}", timeout=UNANSWERED)
                assert await client.refused("publish", subject), f"{component} parked under {victim}"
                # The old form of the subject (no consumer token) is closed too.
                legacy = dl.legacy_subject_for(f"{victim}__billing_invoice_paid_v1")
                with pytest.raises(nats.errors.TimeoutError):
                    await nc.jetstream().publish(legacy, b"{}", timeout=UNANSWERED)
                assert await client.refused("publish", legacy)
    assert (await js.stream_info(dl.STREAM.name)).state.messages == before


async def test_replay_publishes_only_the_original_a_stream_really_holds(private_bus: EmbeddedNats,
                                                                        operator: NATS) -> None:
    """The pipeline may park under its own consumer, but a letter it writes claiming a billing
    invoice that billing never sent (or a changed body of one it did) is refused at replay, so the
    operator's rights never publish it. A true copy replays."""
    js = operator.jetstream()
    paid = billing.InvoicePaidV1(invoice_id=f"INV-{uuid.uuid4().hex[:8]}", customer="Acme",
                                 partner_id=uuid.uuid4(), amount=Decimal("10.00"), currency="USD",
                                 paid_at=datetime.now(UTC))
    genuine = paid.model_dump_json().encode()
    async with Client(private_bus, "billing") as billing_nc:
        ack = await billing_nc.jetstream().publish(paid.subject, genuine, headers={"Nats-Msg-Id": str(paid.event_id)})
    forged = json.loads(genuine)
    forged["amount"] = "100000.00"
    forged_body = json.dumps(forged).encode()
    token = uuid.uuid4().hex[:8]

    pipeline_nc = await bus.connect(private_bus.url_for("pipeline"), name="pipeline", attempts=1)
    try:
        pjs = pipeline_nc.jetstream()

        async def park(data: bytes, *, stream: str = billing.STREAM.name, seq: int = ack.seq,
                       subject: str = paid.subject) -> int:
            # A key of its own each (one letter per key, stream and sequence is kept).
            key = f"pipeline__{token}_{(await js.stream_info(dl.STREAM.name)).state.last_seq}"
            await deadletter.park_raw(pjs, consumer=key, subject=subject, stream=stream, seq=seq, data=data,
                                      headers=None, reason="test", deliveries=1)
            return (await js.stream_info(dl.STREAM.name)).state.last_seq

        refusals = {
            "a changed body": await park(forged_body),
            "a sequence billing never wrote": await park(forged_body, seq=ack.seq + 10_000),
            "another subject": await park(genuine, subject=billing.InvoicePaidV1.subject + ".x"),
            "the dead-letter stream itself": await park(genuine, stream=dl.STREAM.name, seq=1),
        }
        true_copy = await park(genuine)
    finally:
        await pipeline_nc.close()

    billing_before = (await js.stream_info(billing.STREAM.name)).state.last_seq
    for what, seq in refusals.items():
        with pytest.raises(ValueError, match="not replayed"):
            await deadletter.replay(js, seq)
        assert (await deadletter.get(js, seq)).seq == seq, f"{what}: the refused letter is kept"
    refused: list[str] = []
    assert await deadletter.replay_all(js, consumer="pipeline", refused=refused) == 1
    assert len(refused) == len(refusals)
    assert (await js.stream_info(billing.STREAM.name)).state.last_seq == billing_before + 1
    replayed = await js.get_msg(billing.STREAM.name, seq=billing_before + 1)
    assert replayed.data == genuine and (replayed.headers or {}).get("PO-Replayed-From") == str(true_copy)
    assert [d.seq for d in await deadletter.list_all(js, consumer="pipeline")] == sorted(refusals.values())


async def test_letters_are_listed_by_consumer_by_key_and_under_the_old_subject(operator: NATS) -> None:
    js = operator.jetstream()
    consumer = f"c{uuid.uuid4().hex[:8]}"
    key_a, key_b = f"{consumer}__pipeline_a_v1", f"{consumer}__pipeline_b_v1"
    for key in (key_a, key_b):
        await deadletter.park_raw(js, consumer=key, subject="pipeline.a.v1", stream="PIPELINE", seq=1, data=b"x",
                                  headers=None, reason="r", deliveries=1)
    # A letter parked before subjects carried the consumer token.
    body, headers = deadletter.build(consumer=key_a, subject="pipeline.a.v1", stream="PIPELINE", seq=2, data=b"y",
                                     headers=None, reason="old", deliveries=1, max_payload=None)
    await js.publish(dl.legacy_subject_for(key_a), body, headers=headers)

    by_consumer = await deadletter.list_all(js, consumer=consumer)
    assert [d.consumer for d in by_consumer] == [key_a, key_b]
    by_key = await deadletter.list_all(js, consumer=key_a)
    assert [(d.consumer, d.reason) for d in by_key] == [(key_a, "r"), (key_a, "old")]
    assert [d.seq for d in by_key] == sorted(d.seq for d in by_key)
    assert len(await deadletter.list_all(js, consumer=key_a, limit=1)) == 1
    everyone = {d.seq for d in await deadletter.list_all(js)}
    assert {d.seq for d in by_key} | {d.seq for d in by_consumer} <= everyone
