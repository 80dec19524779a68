"""The transactional outbox and its relay against real NATS and Postgres."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from sqlalchemy import text

from contracts import deadletters as dl
from runtime import bus, telemetry
from runtime.db import plain_dsn
from runtime.embedded import EmbeddedNats, free_port
from runtime.outbox import OutboxRelay, RelayIncomplete
from runtime.testing import eventually, ping_event, scratch_stream, unique
from tests.backbone.helpers import consumer_for, counters, drained, stop_task, write_events


def make_relay(engine, schema, js, **kw) -> OutboxRelay:
    kw.setdefault("poll_seconds", 0.5)
    return OutboxRelay(engine=engine, dsn=plain_dsn(engine.url.render_as_string(hide_password=False)),
                       schema=schema, js=js, publish_timeout=1.0, **kw)


async def unsent(engine, schema) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {schema}.outbox WHERE sent_at IS NULL")))


async def stream_messages(js, spec, subject):
    psub = await js.pull_subscribe(subject, stream=spec.name, config=ConsumerConfig(
        deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE))
    out = []
    while True:
        try:
            out.extend(await psub.fetch(500, timeout=1.0))
        except TimeoutError:
            break
    await psub.unsubscribe()
    return out


class TestRelay:
    async def test_events_keep_their_order_per_aggregate(self, nc, scratch):
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec])
        Ping = ping_event(spec)
        events = [Ping(key=f"k{i % 5}", amount=i) for i in range(300)]
        with telemetry.tracer(__name__).start_as_current_span("command") as span:  # as a service writes them
            await write_events(engine, schema, events)
        trace_id = format(span.get_span_context().trace_id, "032x")
        async with engine.connect() as conn:  # staged in one statement per transaction, ids in the given order
            staged = (await conn.scalars(text(f"SELECT event_id FROM {schema}.outbox ORDER BY id"))).all()
        assert staged == [e.event_id for e in events]
        relay = make_relay(engine, schema, js, batch=64)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await eventually(lambda: _is(unsent(engine, schema), 0), what="all rows sent")
        await stop_task(task, stop)
        msgs = await stream_messages(js, spec, Ping.subject)
        assert len(msgs) == 300
        seen: dict[str, list[int]] = defaultdict(list)
        for m in msgs:
            e = Ping.model_validate_json(m.data)
            seen[e.key].append(e.amount)
            assert m.headers["Nats-Msg-Id"] == str(e.event_id)
            assert trace_id in m.headers["traceparent"]  # the writer's trace, carried by the relay
        assert all(v == sorted(v) for v in seen.values())
        assert sum(len(v) for v in seen.values()) == 300

    async def test_notify_wakes_the_relay_without_waiting_for_the_poll(self, nc, scratch):
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec])
        Ping = ping_event(spec)
        # An hour's poll: within the test only the NOTIFY on commit can get the second event out.
        relay = make_relay(engine, schema, js, poll_seconds=3600)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        await write_events(engine, schema, [Ping(key="first")])
        # Sent by the relay's first pass (or its NOTIFY): the relay has listened and polled once.
        await eventually(lambda: _is(unsent(engine, schema), 0), what="the first event sent")
        await write_events(engine, schema, [Ping(key="n")])
        await eventually(lambda: _is(unsent(engine, schema), 0), what="notified relay")
        await stop_task(task, stop)

    async def test_only_one_relay_per_service_is_active(self, nc, scratch):
        schema, engine = scratch
        js = nc.jetstream()
        a, b = make_relay(engine, schema, js), make_relay(engine, schema, js)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(a.run(stop)), asyncio.create_task(b.run(stop))]
        # The leader's last statement is its LISTEN; the other's, a refused try for the lock.
        await eventually(lambda: _leader_and_refused(engine, a, b), what="a leader, and the other refused")
        assert a.is_leader != b.is_leader
        for t in tasks:
            await stop_task(t, stop)

    async def test_republish_is_harmless_to_consumers(self, nc, scratch):
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec, dl.STREAM])
        Ping = ping_event(spec)
        await write_events(engine, schema, [Ping(key="r", amount=1) for _ in range(20)])
        relay = make_relay(engine, schema, js)
        assert await relay.relay_once() == 20
        # The broker's duplicate window drops the re-publish; after it, the inbox would.
        assert await relay.republish() == 20
        consumer = consumer_for(js, engine, schema, (Ping,))
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop))
        await eventually(lambda: _is_true(consumer.stats.applied == 20), what="20 applied")
        await eventually(lambda: drained(js, consumer), what="nothing more to deliver")
        await stop_task(task, stop)
        assert await counters(engine, schema) == {"r": (20, 20)}


def keys_in_order(msgs, Ping) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for m in msgs:
        e = Ping.model_validate_json(m.data)
        seen[e.key].append(e.amount)
    return seen


class TestWindowFailures:
    async def test_a_failed_ack_mid_window_keeps_each_aggregates_order_and_loses_nothing(self, nc, scratch):
        """The broker refuses one row in the middle of a window (too large for the stream): the rows of
        the other aggregates go out and are marked sent, that aggregate's later rows wait behind it,
        and once the stream takes it everything arrives, each aggregate in order, exactly once."""
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await js.add_stream(StreamConfig(name=spec.name, subjects=list(spec.subjects), max_msg_size=1024))
        Ping = ping_event(spec)
        events = [Ping(key=f"k{i % 5}", amount=i) for i in range(300)]
        await write_events(engine, schema, events)
        refused = events[102]  # k2's 21st event
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {schema}.outbox SET payload = payload || repeat(' ', 2000) "
                                    "WHERE event_id = :id"), {"id": refused.event_id})
        relay = make_relay(engine, schema, js, batch=500, max_in_flight=16)
        with pytest.raises(RelayIncomplete):
            await relay.relay_once()
        stored = keys_in_order(await stream_messages(js, spec, Ping.subject), Ping)
        assert stored["k2"] == [e.amount for e in events if e.key == "k2"][:20]
        assert all(stored[k] == [e.amount for e in events if e.key == k] for k in ("k0", "k1", "k3", "k4"))
        assert await unsent(engine, schema) == 60 - 20  # the refused row and k2's rows after it

        await js.update_stream(StreamConfig(name=spec.name, subjects=list(spec.subjects), max_msg_size=-1))
        assert await relay.relay_once() == 40
        msgs = await stream_messages(js, spec, Ping.subject)
        assert len(msgs) == 300
        assert keys_in_order(msgs, Ping) == {k: [e.amount for e in events if e.key == k] for k in stored}

    async def test_a_row_that_cannot_be_written_holds_back_only_its_aggregate(self, nc, scratch):
        """A row the client cannot even send (a stored header whose name is not a token) fails alone: the
        rows of the other aggregates go out in the same write, that aggregate's later rows wait behind
        it, and once the row is fixed everything arrives, each aggregate in order, exactly once."""
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec])
        Ping = ping_event(spec)
        events = [Ping(key=f"k{i % 3}", amount=i) for i in range(30)]
        await write_events(engine, schema, events)
        unwritable = events[4]  # k1's second event
        set_headers = text(f"UPDATE {schema}.outbox SET headers = CAST(:h AS jsonb) WHERE event_id = :id")
        async with engine.begin() as conn:
            await conn.execute(set_headers, {"h": '{"bad key": "x"}', "id": unwritable.event_id})
        relay = make_relay(engine, schema, js, batch=100)
        with pytest.raises(RelayIncomplete):
            await relay.relay_once()
        stored = keys_in_order(await stream_messages(js, spec, Ping.subject), Ping)
        assert stored == {"k0": [e.amount for e in events if e.key == "k0"], "k1": [1],
                          "k2": [e.amount for e in events if e.key == "k2"]}
        assert await unsent(engine, schema) == 9

        async with engine.begin() as conn:
            await conn.execute(set_headers, {"h": "{}", "id": unwritable.event_id})
        assert await relay.relay_once() == 9
        msgs = await stream_messages(js, spec, Ping.subject)
        assert len(msgs) == 30
        assert keys_in_order(msgs, Ping) == {k: [e.amount for e in events if e.key == k] for k in stored}

    async def test_a_relay_killed_mid_window_loses_nothing_and_keeps_order(self, servers, nc, scratch):
        """SIGKILL a relay process while a window of publishes is out (published, not yet marked sent);
        a new relay publishes those rows again: Nats-Msg-Id drops the repeats, nothing is missing, and
        each aggregate's events are in the stream in outbox order."""
        schema, engine = scratch
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec])
        Ping = ping_event(spec)
        total = 12000
        events = [Ping(key=f"k{i % 200}", amount=i) for i in range(total)]
        await write_events(engine, schema, events, per_txn=1000)
        url = engine.url.render_as_string(hide_password=False)
        process = subprocess.Popen([sys.executable, "-c", _RELAY_PROCESS, url, servers.nats_url, schema],
                                   cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async def mid_window() -> bool:  # some way into a batch's window, after the first batch
                n = (await js.stream_info(spec.name)).state.messages
                return n >= 1000 and 200 <= n % 1000 <= 800

            await eventually(mid_window, what="the relay process in the middle of a window")
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        finally:
            process.kill()
        published = (await js.stream_info(spec.name)).state.messages
        marked = total - await unsent(engine, schema)
        assert marked < published < total, (marked, published)  # killed with a window out, unmarked

        relay = make_relay(engine, schema, js, batch=1000)
        while await relay.relay_once():
            pass
        assert await unsent(engine, schema) == 0
        msgs = await stream_messages(js, spec, Ping.subject)
        assert len(msgs) == total
        by_key = keys_in_order(msgs, Ping)
        assert by_key == {f"k{k}": list(range(k, total, 200)) for k in range(200)}


ROOT = Path(__file__).resolve().parents[2]
# A relay alone in a process of its own, to be killed: large batches, a window of 64 publishes.
_RELAY_PROCESS = """
import asyncio, sys
from runtime import bus
from runtime.db import create_engine, plain_dsn
from runtime.outbox import OutboxRelay

async def main(url, nats_url, schema):
    nc = await bus.connect(nats_url, name="relay-to-kill")
    relay = OutboxRelay(engine=create_engine(url, trace_sql=False), dsn=plain_dsn(url), schema=schema,
                        js=nc.jetstream(), batch=1000, max_in_flight=64, poll_seconds=0.5)
    await relay.run(asyncio.Event())

asyncio.run(main(*sys.argv[1:4]))
"""


class TestNatsOutage:
    async def test_events_written_while_nats_is_down_arrive_once_it_is_back(self, tmp_path, scratch):
        schema, engine = scratch
        server = EmbeddedNats(store_dir=tmp_path / "nats", port=free_port()).start()
        nc = await bus.connect(server.url, name=unique("outage"))
        js = nc.jetstream()
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec, dl.STREAM])
        Ping = ping_event(spec)
        relay = make_relay(engine, schema, js)
        # A killed server can come back without the last acks it was sent (they were in flight, or not yet
        # on disk): it redelivers those after ack_wait, and the inbox must absorb them. A short ack_wait
        # makes that happen within the test rather than after the default 30 s.
        consumer = consumer_for(js, engine, schema, (Ping,), ack_wait=2.0)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(consumer.run(stop))]
        try:
            await write_events(engine, schema, [Ping(key="before", amount=1) for _ in range(50)])
            # The relay counts a batch once its mark-sent commits, which can be after the consumer applied it.
            await eventually(lambda: _is_true(consumer.stats.applied == 50 and relay.published == 50),
                             what="events before outage")

            server.stop(kill=True)
            published = relay.published
            await write_events(engine, schema, [Ping(key="during", amount=1) for _ in range(200)])
            await eventually(lambda: _is_true(relay.failures > 0), what="the relay to fail to publish")
            assert relay.published == published and await unsent(engine, schema) == 200, \
                "nothing can be sent while NATS is down"

            server.start()
            await eventually(lambda: _is(unsent(engine, schema), 0), what="outbox drained")
            await eventually(lambda: _is_true(consumer.stats.applied == 250), what="every event applied once")
            await eventually(lambda: drained(js, consumer), what="nothing more to deliver")
        finally:
            for t in tasks:
                await stop_task(t, stop)
            await nc.close()
            server.stop()
        assert await counters(engine, schema) == {"before": (50, 50), "during": (200, 200)}


async def _leader_and_refused(engine, a: OutboxRelay, b: OutboxRelay) -> bool:
    if a.is_leader == b.is_leader:
        return False
    async with engine.connect() as conn:
        last = set((await conn.execute(text(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle'"))).scalars())
    return any(q.startswith("LISTEN") for q in last) and any("pg_try_advisory_lock" in q for q in last)


async def _is(coro, value) -> bool:
    return (await coro) == value


async def _is_true(value: bool) -> bool:
    return bool(value)


pytestmark = pytest.mark.timeout(120)
