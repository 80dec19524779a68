"""The inbox consumer against real NATS and Postgres: duplicates, crashes, transient failures,
poison messages and their replay."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import text

from contracts import deadletters as dl
from runtime import bus, deadletter
from runtime.inbox import SimulatedCrash
from runtime.testing import eventually, ping_event, scratch_stream
from tests.backbone.helpers import consumer_for, counters, counting_handler, letters_key, stop_task


@pytest.fixture
async def stream(nc):
    spec = scratch_stream()
    await bus.ensure_streams(nc.jetstream(), [spec, dl.STREAM])
    yield spec
    await nc.jetstream().delete_stream(spec.name)


async def publish(js, event, *, msg_id: str | None = None, data: bytes | None = None, subject=None) -> None:
    await js.publish(subject or event.subject, data if data is not None else event.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": msg_id or str(uuid.uuid4())})


class TestDuplicates:
    async def test_same_message_delivered_twice_is_applied_once(self, nc, scratch, stream):
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        event = Ping(key="a", amount=5)
        # Two distinct message ids defeat the broker's de-duplication: only the inbox stands in the way.
        await publish(js, event)
        await publish(js, event)
        consumer = consumer_for(js, engine, schema, (Ping,))
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await eventually(lambda: _done(consumer, 2), what="both deliveries processed")
        await stop_task(task, stop)
        assert await counters(engine, schema) == {"a": (5, 1)}
        assert consumer.stats.duplicates == 1

    async def test_crash_after_commit_before_ack_is_applied_once(self, nc, scratch, stream):
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        await publish(js, Ping(key="b", amount=7))

        async def crash(_msgs) -> None:
            raise SimulatedCrash("the process dies after the commit, before the ack")

        first = consumer_for(js, engine, schema, (Ping,), ack_wait=1.0, before_ack=crash)
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        with pytest.raises(SimulatedCrash):
            await asyncio.wait_for(task, 10)
        assert await counters(engine, schema) == {"b": (7, 1)}

        # A restarted consumer (same durable) gets the unacked message again after ack_wait.
        second = consumer_for(js, engine, schema, (Ping,), ack_wait=1.0)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        await eventually(lambda: _done(second, 1), what="redelivery")
        await stop_task(task, stop)
        assert second.stats.duplicates == 1 and second.stats.redelivered == 1
        assert await counters(engine, schema) == {"b": (7, 1)}
        info = await js.consumer_info(stream.name, second.durable)
        assert info.num_ack_pending == 0 and info.num_pending == 0


class TestTransientFailure:
    async def test_lock_timeout_is_retried_until_it_succeeds(self, nc, scratch, stream, platform_db):
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        async with engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO {schema}.counter VALUES ('c', 0, 0)"))

        async def short_lock_timeout(session) -> None:
            await session.execute(text("SET LOCAL lock_timeout = '150ms'"))

        consumer = consumer_for(js, engine, schema, (Ping,),
                                handle=counting_handler(schema, before=short_lock_timeout), max_deliver=20)
        # Another transaction holds the row: the consumer's update fails with a real lock timeout.
        blocker = await engine.connect()
        txn = await blocker.begin()
        await blocker.execute(text(f"SELECT * FROM {schema}.counter WHERE key = 'c' FOR UPDATE"))
        await publish(js, Ping(key="c", amount=3))
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await eventually(lambda: _true(consumer.stats.retried >= 2), what="at least two failed attempts")
        await txn.rollback()
        await blocker.close()
        await eventually(lambda: _done(consumer, 1), what="eventual success")
        await stop_task(task, stop)
        assert await counters(engine, schema) == {"c": (3, 1)}
        assert consumer.stats.dead_lettered == 0
        assert "LockNotAvailable" in (consumer.stats.last_error or "")


    async def test_the_batch_fetched_ahead_is_held_while_a_pause_outlasts_ack_wait(self, nc, scratch, stream):
        """The consumer fetches the next batch while it applies the current one. When the current one
        waits out a transient failure for longer than ack_wait, the batch fetched ahead is kept in
        progress too: nothing is redelivered, and both apply in order once the lock is gone."""
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        async with engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO {schema}.counter VALUES ('c', 0, 0)"))
        applied: list[str] = []

        async def short_lock_timeout(session) -> None:
            await session.execute(text("SET LOCAL lock_timeout = '100ms'"))

        counting = counting_handler(schema, before=short_lock_timeout)

        async def handle(session, event) -> None:
            await counting(session, event)
            applied.append(event.key)

        consumer = consumer_for(js, engine, schema, (Ping,), handle=handle, batch=1, ack_wait=1.0)
        blocker = await engine.connect()
        try:
            txn = await blocker.begin()
            await blocker.execute(text(f"SELECT * FROM {schema}.counter WHERE key = 'c' FOR UPDATE"))
            await publish(js, Ping(key="c", amount=3))
            await publish(js, Ping(key="e", amount=4))
            stop = asyncio.Event()
            task = asyncio.create_task(consumer.run(stop))
            await eventually(lambda: _true(consumer.subscriber is not None and len(consumer.subscriber.ahead) == 1),
                             what="the second event fetched ahead")
            # Retries wait 0.2 + 0.4 + 0.8 s: the pause has outlasted ack_wait (1 s) by then.
            await eventually(lambda: _true(consumer.stats.retried >= 4), what="a pause longer than ack_wait")
            await txn.rollback()
        finally:
            await blocker.close()
        await eventually(lambda: _done(consumer, 2), what="both applied")
        info = await js.consumer_info(stream.name, consumer.durable)
        await stop_task(task, stop)
        assert applied == ["c", "e"]
        assert await counters(engine, schema) == {"c": (3, 1), "e": (4, 1)}
        assert consumer.stats.redelivered == 0 and consumer.stats.duplicates == 0
        assert info.num_redelivered == 0 and info.num_ack_pending == 0


class TestDeadLetters:
    async def test_poison_messages_are_parked_with_reasons_and_replay_applies_after_fix(self, nc, scratch, stream):
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        PingV2 = ping_event(stream, version=2)
        await publish(js, Ping(key="d"), data=b"{not json", subject=Ping.subject)
        await publish(js, PingV2(key="d", amount=10, note="from a newer producer"))
        await publish(js, Ping(key="d", amount=1), data=json.dumps({"schema_version": 1, "key": 5}).encode())
        await publish(js, Ping(key="d", amount=2))

        old = consumer_for(js, engine, schema, (Ping,))
        stop = asyncio.Event()
        task = asyncio.create_task(old.run(stop))
        await eventually(lambda: _true(old.stats.applied == 1 and old.stats.dead_lettered == 3),
                         what="one applied, three dead-lettered")
        await stop_task(task, stop)
        assert await counters(engine, schema) == {"d": (2, 1)}

        letters = await deadletter.list_all(js, consumer=letters_key(old))
        reasons = sorted(letter.reason for letter in letters)
        assert len(letters) == 3
        assert any("not JSON" in r for r in reasons)
        assert any("unknown schema_version 2" in r for r in reasons)
        assert any("invalid PingRecordedV1" in r and "key" in r for r in reasons)
        assert all(letter.subject == Ping.subject for letter in letters)

        # The fix: the consumer learns version 2. Replaying the dead letter then applies it.
        v2_letter = next(letter for letter in letters if "schema_version 2" in letter.reason)
        fixed = consumer_for(js, engine, schema, (Ping, PingV2))
        stop = asyncio.Event()
        task = asyncio.create_task(fixed.run(stop))
        await deadletter.replay(js, v2_letter.seq)
        await eventually(lambda: _true(fixed.stats.applied == 1), what="replayed event applied")
        await stop_task(task, stop)
        assert await counters(engine, schema) == {"d": (12, 2)}
        remaining = await deadletter.list_all(js, consumer=letters_key(old))
        assert sorted(letter.seq for letter in remaining) == sorted(
            letter.seq for letter in letters if letter.seq != v2_letter.seq)

    async def test_a_failure_that_never_clears_is_dead_lettered_after_max_deliver(self, nc, scratch, stream):
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)

        async def always_fails(session) -> None:
            # Neither the message (permanent) nor the infrastructure (transient): a bug that never clears.
            raise RuntimeError("a bug that never clears")

        consumer = consumer_for(js, engine, schema, (Ping,), handle=counting_handler(schema, before=always_fails),
                                max_deliver=3, backoff=(0.1,))
        await publish(js, Ping(key="e"))
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await eventually(lambda: _true(consumer.stats.dead_lettered == 1), what="dead letter after 3 tries")
        await stop_task(task, stop)
        [letter] = await deadletter.list_all(js, consumer=letters_key(consumer))
        assert letter.deliveries == 3 and "never clears" in letter.reason
        assert await counters(engine, schema) == {}


async def _done(consumer, n: int) -> bool:
    return consumer.stats.applied + consumer.stats.duplicates >= n


async def _true(value: bool) -> bool:
    return value
