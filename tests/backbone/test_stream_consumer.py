"""One durable consumer per (consumer, producer stream): the events of one aggregate arrive in publish
order across event kinds and batches; the per-subject durables of earlier versions are replaced without
losing or doubling anything; a batch with one poison message applies its neighbours and parks only the
culprit, with its real reason, at once."""

from __future__ import annotations

import asyncio
from typing import ClassVar, Literal

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text

from contracts import deadletters as dl
from contracts.base import Event, StreamSpec
from runtime import bus, deadletter
from runtime.db import session_factory
from runtime.inbox import InboxConsumer, Subscription
from runtime.testing import eventually, ping_event, scratch_stream
from tests.backbone.helpers import consumer_for, counters, counting_handler, drained, letters_key, stop_task


@pytest.fixture
async def stream(nc):
    spec = scratch_stream()
    await bus.ensure_streams(nc.jetstream(), [spec, dl.STREAM])
    yield spec
    await nc.jetstream().delete_stream(spec.name)


def kinds(stream: StreamSpec) -> tuple[type[Event], type[Event], type[Event]]:
    """Three event kinds of one aggregate on three subjects of one stream (like created / updated /
    stage changed)."""
    prefix = stream.subjects[0][:-2]
    spec = stream

    class Base(Event):
        stream: ClassVar[StreamSpec] = spec
        schema_version: Literal[1] = 1  # type: ignore[assignment]
        key: str
        n: int

    class CreatedV1(Base):
        subject: ClassVar[str] = f"{prefix}.thing.created.v1"

    class UpdatedV1(Base):
        subject: ClassVar[str] = f"{prefix}.thing.updated.v1"

    class MovedV1(Base):
        subject: ClassVar[str] = f"{prefix}.thing.moved.v1"

    return CreatedV1, UpdatedV1, MovedV1


async def _publish(js, event: Event, data: bytes | None = None) -> None:
    await js.publish(event.subject, data if data is not None else event.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": str(event.event_id)})


async def test_a_burst_of_one_aggregate_across_kinds_and_batches_is_applied_in_publish_order(nc, scratch, stream):
    schema, engine = scratch
    js = nc.jetstream()
    Created, Updated, Moved = kinds(stream)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {schema}.seen (seq bigserial PRIMARY KEY, kind text, n int)"))

    async def record(session, events) -> None:
        await session.execute(text(f"INSERT INTO {schema}.seen (kind, n) VALUES (:kind, :n)"),
                              [{"kind": type(e).__name__, "n": e.n} for e in events])

    async def record_one(session, event) -> None:
        await record(session, [event])

    # Like the gateway: two kinds share a batch handler, the third is applied one event at a time.
    subs = [Subscription("order", (Created,), record_one, handle_many=record),
            Subscription("order", (Updated,), record_one, handle_many=record),
            Subscription("order", (Moved,), record_one)]
    consumer = InboxConsumer(subs, js=js, sessions=session_factory(engine), schema=schema, batch=7)
    sent = []
    for n in range(150):
        kind = (Created, Updated, Moved, Updated, Moved)[n % 5] if n else Created
        sent.append((kind.__name__, n))
        await _publish(js, kind(key="one", n=n))
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: _true(consumer.stats.applied == 150), what="150 applied")
    await stop_task(task, stop)
    async with engine.connect() as conn:
        seen = [(r.kind, r.n) for r in await conn.execute(text(f"SELECT kind, n FROM {schema}.seen ORDER BY seq"))]
    assert seen == sent
    info = await js.consumer_info(stream.name, consumer.durable)
    assert sorted(info.config.filter_subjects) == sorted(k.subject for k in (Created, Updated, Moved))


async def test_per_subject_durables_of_earlier_versions_are_replaced_without_loss_or_double(nc, scratch, stream):
    """Before: one durable per subject, each at its own position, their effects in the inbox under the
    durable's name. After the upgrade: one durable for the stream that starts where the least advanced
    stood; the inbox skips what the others had already applied; the old durables are gone."""
    schema, engine = scratch
    js = nc.jetstream()
    Ping = ping_event(stream)
    Other = kinds(stream)[0]
    pings = [Ping(key="p", amount=i) for i in range(1, 21)]
    others = [Other(key="o", n=i) for i in range(10)]
    for i in range(20):
        await _publish(js, pings[i])
        if i < 10:
            await _publish(js, others[i])
    sub_ping = Subscription("up", (Ping,), counting_handler(schema))
    sub_other = Subscription("up", (Other,), _count_other(schema))
    # The old ping durable applied and acked 15 pings; the old other durable applied 3 and acked them.
    for sub, events, done in ((sub_ping, pings, 15), (sub_other, others, 3)):
        await js.add_consumer(stream.name, ConsumerConfig(durable_name=sub.inbox_key, filter_subject=sub.subject,
                                                          ack_policy=AckPolicy.EXPLICIT,
                                                          deliver_policy=DeliverPolicy.ALL))
        psub = await js.pull_subscribe_bind(durable=sub.inbox_key, stream=stream.name)
        msgs = await psub.fetch(done, timeout=5)
        async with session_factory(engine)() as session, session.begin():
            for event in events[:done]:
                await session.execute(text(f"INSERT INTO {schema}.inbox (consumer, event_id) VALUES (:c, :e)"),
                                      {"c": sub.inbox_key, "e": event.event_id})
                await (sub.handle(session, event))
        for m in msgs:
            await m.ack()
        await psub.unsubscribe()

    consumer = InboxConsumer([sub_ping, sub_other], js=js, sessions=session_factory(engine), schema=schema)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: _true(consumer.stats.applied == 5 + 7), what="the 12 not yet applied")
    await eventually(lambda: drained(js, consumer), what="nothing more to deliver")
    await stop_task(task, stop)
    assert await counters(engine, schema) == {"p": (sum(range(1, 21)), 20), "o": (sum(range(10)), 10)}
    names = [c.name async for c in _consumers(js, stream.name)]
    assert names == [consumer.durable]


async def test_a_batch_with_one_poison_message_applies_its_neighbours_and_parks_only_the_culprit(
        nc, scratch, stream):
    schema, engine = scratch
    js = nc.jetstream()
    Ping = ping_event(stream)
    events = [Ping(key=f"k{i}", amount=i) for i in range(10)]
    # A NUL in the key: valid JSON, a valid event, but Postgres refuses it (22021) — never retried.
    events[4] = Ping(key="bad\u0000key", amount=4)
    for e in events:
        await _publish(js, e)
    consumer = consumer_for(js, engine, schema, (Ping,), batch=64)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    await eventually(lambda: _true(consumer.stats.applied == 9 and consumer.stats.dead_lettered == 1),
                     what="nine applied, one parked")
    await stop_task(task, stop)
    assert await counters(engine, schema) == {f"k{i}": (i, 1) for i in range(10) if i != 4}
    [letter] = await deadletter.list_all(js, consumer=letters_key(consumer))
    assert "22021" in letter.reason or "CharacterNotInRepertoire" in letter.reason, letter.reason
    assert letter.deliveries == 1 and consumer.stats.retried == 0
    assert letter.data == events[4].model_dump_json().encode()


def _count_other(schema: str):
    async def handle(session, event) -> None:
        await session.execute(
            text(f"INSERT INTO {schema}.counter (key, total, applications) VALUES (:k, :a, 1) "
                 f"ON CONFLICT (key) DO UPDATE SET total = counter.total + EXCLUDED.total, "
                 f"applications = counter.applications + 1"), {"k": event.key, "a": event.n})

    return handle


async def _consumers(js, stream: str):
    for info in await js.consumers_info(stream):
        yield info


async def _true(value: bool) -> bool:
    return value




async def test_a_message_the_consumer_keeps_dying_on_is_parked_and_its_neighbours_applied(nc, scratch, stream):
    """The process dies (not an exception: a BaseException, as an interpreter crash or a kill would) each
    time it handles one message. After max_deliver redeliveries it is parked instead of killing the next
    process too; the messages around it are applied once."""
    from runtime.inbox import SimulatedCrash

    schema, engine = scratch
    js = nc.jetstream()
    Ping = ping_event(stream)
    count = counting_handler(schema)

    async def handle(session, event) -> None:
        if event.key == "die":
            raise SimulatedCrash("the process dies on this message")
        await count(session, event)

    for key in ("a", "b", "die", "c", "d"):
        await _publish(js, Ping(key=key))
    restarts = 0
    while True:
        consumer = consumer_for(js, engine, schema, (Ping,), handle=handle, max_deliver=3, ack_wait=1.0)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        # The process dies on the message (a new one then takes over) or parks it.
        await eventually(lambda c=consumer, t=task: t.done() or c.stats.dead_lettered > 0,
                         what="the consumer to die on the message or park it")
        if consumer.stats.dead_lettered:
            current = consumer
            await eventually(lambda: _true(current.stats.applied >= 2), what="the rest applied")  # noqa: B023
            await stop_task(task, stop)
            break
        with pytest.raises(SimulatedCrash):
            await task
        restarts += 1
        assert restarts <= 6, "the message was never parked"
    assert await counters(engine, schema) == {k: (1, 1) for k in ("a", "b", "c", "d")}
    [letter] = await deadletter.list_all(js, consumer=letters_key(consumer))
    assert "without an acknowledgement" in letter.reason and letter.deliveries > 3


async def test_a_subscription_added_later_updates_the_durables_subjects(nc, scratch, stream):
    schema, engine = scratch
    js = nc.jetstream()
    Ping = ping_event(stream)
    Other = kinds(stream)[0]
    first = InboxConsumer([Subscription("grow", (Ping,), counting_handler(schema))], js=js,
                          sessions=session_factory(engine), schema=schema)
    await first.ensure(js)
    subs = [Subscription("grow", (Ping,), counting_handler(schema)),
            Subscription("grow", (Other,), _count_other(schema))]
    second = InboxConsumer(subs, js=js, sessions=session_factory(engine), schema=schema)
    await _publish(js, Ping(key="p", amount=2))
    await _publish(js, Other(key="o", n=3))
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    await eventually(lambda: _true(second.stats.applied == 2), what="both kinds applied")
    await stop_task(task, stop)
    info = await js.consumer_info(stream.name, second.durable)
    assert sorted(info.config.filter_subjects) == sorted([Ping.subject, Other.subject])
    assert await counters(engine, schema) == {"p": (2, 1), "o": (3, 1)}
