"""The inbox consumer against real NATS and Postgres: duplicates, crashes, transient failures,
poison messages and their replay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import nats.errors
import pytest
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from sqlalchemy import text

from contracts import deadletters as dl
from runtime import bus, deadletter
from runtime.inbox import SimulatedCrash, _Fetcher, _pull
from runtime.testing import eventually, ping_event, scratch_stream, unique
from tests.backbone.helpers import consumer_for, counters, counting_handler, drained, letters_key, stop_task


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

    async def test_a_batch_mixing_new_seen_and_repeated_events_applies_each_new_one_once_in_order(
            self, nc, scratch, stream):
        """The claim says which positions of a batch are new: those seen in an earlier batch and the second
        copy of an event inside the batch are skipped, the rest applied in the batch's order."""
        schema, engine = scratch
        js = nc.jetstream()
        Ping = ping_event(stream)
        seen = [Ping(key="s", amount=1), Ping(key="t", amount=2)]
        for event in seen:
            await publish(js, event)
        applied: list[str] = []
        counting = counting_handler(schema)

        async def handle(session, event) -> None:
            await counting(session, event)
            applied.append(event.key)

        first = consumer_for(js, engine, schema, (Ping,), handle=handle)
        stop = asyncio.Event()
        task = asyncio.create_task(first.run(stop))
        await eventually(lambda: _done(first, 2), what="the first two applied")
        await stop_task(task, stop)
        new = [Ping(key=k, amount=10) for k in "uvw"]
        # One batch: new u, seen s, new v, u again, seen t, new w, v again.
        for event in (new[0], seen[0], new[1], new[0], seen[1], new[2], new[1]):
            await publish(js, event)
        second = consumer_for(js, engine, schema, (Ping,), handle=handle, batch=16)
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop))
        await eventually(lambda: _done(second, 7), what="the mixed batch processed")
        await stop_task(task, stop)
        assert applied == ["s", "t", "u", "v", "w"]
        assert second.stats.applied == 3 and second.stats.duplicates == 4
        assert await counters(engine, schema) == {"s": (1, 1), "t": (2, 1), "u": (10, 1), "v": (10, 1), "w": (10, 1)}
        assert await drained(js, second)

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

        # ack_wait 2 s: the hold tells the server "in progress" every ack_wait/3, and on a loaded machine an
        # attempt plus a late wake-up took the 1 s used before (a flake); the pause must still outlast it.
        consumer = consumer_for(js, engine, schema, (Ping,), handle=handle, batch=1, ack_wait=2.0,
                                backoff=(0.2, 0.4, 0.8, 1.6))
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
            # Retries wait 0.2 + 0.4 + 0.8 + 1.6 s: the pause has outlasted ack_wait (2 s) by then.
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


class _CountingFetcher(_Fetcher):
    """The consumer's fetch loop as it is, counting fetches begun and returned (so a test knows when
    the loop has no fetch outstanding)."""

    __slots__ = ()
    begun: int = 0
    returned: int = 0

    async def _fetch(self):
        self.begun += 1
        try:
            return await super()._fetch()
        finally:
            self.returned += 1


async def _stopped_holding_late_deliveries(js, engine, schema, stream, k: int, *, abandon: bool):
    """The consumer holds its first event (its loop blocked, its fetch ahead returned, no request of its own
    left on the server) while a pull request of its subscription is served with `k` events nobody reads;
    then it is stopped (abandoning what it holds if `abandon`), the first event released meanwhile."""
    Ping = ping_event(stream)
    entered, release = asyncio.Event(), asyncio.Event()
    counting = counting_handler(schema)

    async def handle(session, event) -> None:
        if event.key == "first":
            entered.set()
            await release.wait()
        await counting(session, event)

    consumer = consumer_for(js, engine, schema, (Ping,), handle=handle, ack_wait=600.0, batch=64)
    broker = bus.broker(bus.url_of(js._nc), name="stopping-test")
    consumer.attach(broker)
    fetcher = consumer.subscriber
    fetcher.__class__ = _CountingFetcher
    await consumer.ensure((await bus.connect_broker(broker)).jetstream())
    await broker.start()
    stopping = None
    try:
        await publish(js, Ping(key="first", amount=1))
        await eventually(lambda: _true(entered.is_set()), what="the first event held by its handler")
        # The fetch ahead began before the handler was entered (the batch's transaction waited for
        # Postgres first). Once it has returned, the loop waits on the handler and nothing reads the
        # subscription; then the server holds no pull request of ours.
        await eventually(lambda: _true(fetcher.returned == fetcher.begun), what="the fetch ahead returned")
        await eventually(lambda: _server(js, stream, consumer, ack_pending=1, waiting=0),
                         what="no pull request left on the server")
        psub = fetcher.subscription
        # A pull request of this subscription, as fetch sends it, that the server serves after its
        # fetch has stopped reading.
        await psub._nc.publish(psub._nms, json.dumps({"batch": k, "expires": 30_000_000_000}).encode(),
                               psub._deliver)
        for i in range(k):
            await publish(js, Ping(key=f"late{i}", amount=1))
        # Data messages only: the server's end of the expired request ahead (a status) may come too.
        await eventually(lambda: _true(len(_unread(psub)) == k), what="the late events in the queue, unread")
        assert (await js.consumer_info(stream.name, consumer.durable)).num_ack_pending == 1 + k

        if abandon:
            consumer.abandon_on_stop()
        stopping = asyncio.create_task(broker.stop())
        await eventually(lambda: _true(not fetcher.running), what="the consumer stopping")
        release.set()
        await asyncio.wait_for(stopping, 60)
    finally:
        release.set()
        if stopping is None:
            await broker.stop()
    assert await counters(engine, schema) == {"first": (1, 1)}
    return consumer


class TestFetch:
    async def test_a_fetch_that_reads_an_earlier_request_s_end_leaves_no_request_to_hold_the_next_fetch(
            self, nc, stream):
        """A fetch asks with a one-shot request (`no_wait` with `expires`: the server keeps it until a
        message comes, then ends it). An idle fetch stops reading at its deadline a moment before the
        server expires its request, so that request's 408 can arrive during the next fetch, after its
        request went out: the fetch takes it for its own request's end and asks again, two requests of
        its on the server now. The first takes the next message; the second must end once it has
        delivered too. One for the whole batch stayed on the server after its fetch returned, took the
        message after and kept the fetch reading it waiting until it expired, a fetch timeout (the idle
        outliers of bench.event_latency). Here the earlier request is a real one, short, sent beside the
        fetch's own; the fetches' timeout (10 minutes) is far longer than the test waits for them."""
        js = nc.jetstream()
        Ping = ping_event(stream)
        psub = await js.pull_subscribe(Ping.subject, durable=unique("fetch_"), stream=stream.name,
                                       config=ConsumerConfig(ack_wait=600.0))
        durable = psub._consumer
        timeout = 600.0
        first = second = None
        try:
            first = asyncio.create_task(_pull(psub, 256, timeout))
            await eventually(lambda: _waiting(js, stream, durable, 1), what="the fetch's request on the server")
            await nc.publish(psub._nms, json.dumps({"batch": 1, "expires": 50_000_000}).encode(), psub._deliver)
            await eventually(lambda: _true(psub._sub.delivered == 1 and psub._sub._pending_queue.empty()),
                             what="the earlier request's 408 read by the fetch")
            await eventually(lambda: _waiting(js, stream, durable, 2), what="the fetch asking again")
            await publish(js, Ping(key="a"))
            fetched = await asyncio.wait_for(first, 30)
            assert [json.loads(m.data)["key"] for m in fetched] == ["a"]
            await fetched[0].ack()

            second = asyncio.create_task(_pull(psub, 256, timeout))
            await eventually(lambda: _waiting(js, stream, durable, 2), what="the next fetch's request beside the "
                             "one left from the first")
            await publish(js, Ping(key="b"))
            await asyncio.wait({second}, timeout=30)
            assert second.done(), "the next fetch is held by the request the first one left on the server"
            assert [json.loads(m.data)["key"] for m in second.result()] == ["b"]
        finally:
            for task in (first, second):
                if task is not None:
                    task.cancel()
            await psub.unsubscribe()


class TestStopping:
    async def test_what_the_server_delivers_after_the_last_fetch_is_nak_ed_on_stop(self, nc, scratch, stream):
        """nats-py's fetch returns at its deadline while its pull request (for a whole batch) may still be
        served by the server a moment longer; what arrives then waits in the subscription's queue for the
        next fetch. A stopping consumer makes no next fetch: those messages, delivered and unanswered,
        waited out ack_wait before another replica got them (late events in rolling restarts). Here the
        state is made outright (`_stopped_holding_late_deliveries`); on stop they are nak'ed: the durable
        hands them to the next fetch at once (delivered twice), long before their ack_wait (ten minutes)
        could run out."""
        schema, engine = scratch
        js = nc.jetstream()
        k = 5
        consumer = await _stopped_holding_late_deliveries(js, engine, schema, stream, k, abandon=False)
        # Handed back, the late events are the next fetch's at once; left unanswered, they would be no
        # fetch's before their ack_wait ran out, ten minutes after they were delivered (longer than this
        # test waits for them).
        sub = await js.pull_subscribe_bind(consumer.durable, stream=stream.name)
        again: list = []

        async def fetched_all() -> bool:
            with contextlib.suppress(nats.errors.TimeoutError):
                again.extend(await sub.fetch(batch=k - len(again), timeout=2))
            return len(again) == k

        try:
            await eventually(fetched_all, what="the late events delivered again")
            assert sorted(json.loads(m.data)["key"] for m in again) == [f"late{i}" for i in range(k)]
            assert {m.metadata.num_delivered for m in again} == {2}
            for m in again:
                await m.ack()
        finally:
            await sub.unsubscribe()
        await eventually(lambda: _server(js, stream, consumer, ack_pending=0, waiting=0), what="nothing left unacked")

    async def test_a_stop_whose_bus_goes_too_finishes_its_batch_and_abandons_the_rest(self, nc, scratch, stream):
        """`hand_back = False` (RunningService.hand_back, for a bus that stops with the service): the batch
        being applied is still committed and acked, but what the server delivered after the last fetch is
        left to ack_wait instead of nak'ed, and the stop does not wait for it."""
        schema, engine = scratch
        js = nc.jetstream()
        k = 3
        consumer = await _stopped_holding_late_deliveries(js, engine, schema, stream, k, abandon=True)
        # The first event applied and acked; the late ones were not handed back: still out until their
        # ack_wait (ten minutes), where a handing-back stop makes them the next fetch's at once.
        assert (await js.consumer_info(stream.name, consumer.durable)).num_ack_pending == k
        sub = await js.pull_subscribe_bind(consumer.durable, stream=stream.name)
        try:
            # Nothing comes: nats-py says so with its TimeoutError, or the builtin one when its request's
            # end (408) arrives just before its own timer (nats/js/client.py, _fetch_n): a race, not a result.
            with pytest.raises(TimeoutError):
                await sub.fetch(batch=k, timeout=3)
        finally:
            await sub.unsubscribe()

    async def test_an_abandoning_stop_cancels_the_idle_consumer_s_outstanding_fetch(self, nc, scratch, stream):
        """A handing-back stop waits for the fetch outstanding to end (its timeout, 30 s here), so that what
        it brings can be nak'ed; an abandoning one cancels it."""
        schema, engine = scratch
        Ping = ping_event(stream)
        consumer = consumer_for(nc.jetstream(), engine, schema, (Ping,), fetch_timeout=30.0)
        broker = bus.broker(bus.url_of(nc), name="idle-stop-test")
        consumer.attach(broker)
        fetcher = consumer.subscriber
        fetcher.__class__ = _CountingFetcher
        await consumer.ensure((await bus.connect_broker(broker)).jetstream())
        await broker.start()
        await eventually(lambda: _true(fetcher.begun >= 1), what="a fetch outstanding")
        outstanding = fetcher.fetching
        consumer.abandon_on_stop()
        await asyncio.wait_for(broker.stop(), 20)  # shorter than the fetch's own 30 s
        assert outstanding.cancelled()

def _unread(psub) -> list:
    """The messages waiting in a pull subscription's queue (nats-py's own) that are not status messages."""
    return [m for m in list(psub._sub._pending_queue._queue) if not JetStreamContext.is_status_msg(m)]


async def _server(js, stream, consumer, *, ack_pending: int, waiting: int) -> bool:
    info = await js.consumer_info(stream.name, consumer.durable)
    return info.num_ack_pending == ack_pending and info.num_waiting == waiting


async def _waiting(js, stream, durable: str, n: int) -> bool:
    return (await js.consumer_info(stream.name, durable)).num_waiting == n


async def _done(consumer, n: int) -> bool:
    return consumer.stats.applied + consumer.stats.duplicates >= n


async def _true(value: bool) -> bool:
    return value
