"""Kill and restart the database, the broker and the worker process mid-stream: the end state must
be exactly what a fault-free run gives — every event applied once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from contracts import deadletters as dl
from contracts.base import StreamSpec
from runtime import bus, database_setup, deadletter
from runtime.db import create_engine
from runtime.embedded import EmbeddedNats, EmbeddedPostgres
from runtime.testing import create_scratch_schema, eventually, ping_event, unique
from tests.backbone.helpers import consumer_for, counters, drained, letters_key, stop_task, write_events

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)
N = 600
# The outage test's consumer: the server would spend every delivery of a batch held ACK_WAIT x MAX_DELIVER.
ACK_WAIT, MAX_DELIVER = 2.0, 3
OUTAGE_SECONDS = ACK_WAIT * (MAX_DELIVER + 1)


@pytest.fixture
async def world(tmp_path):
    """A Postgres and a NATS of this test's own: they are about to be killed."""
    pg = await asyncio.to_thread(EmbeddedPostgres(base_dir=tmp_path / "pg").start)
    nats = await asyncio.to_thread(EmbeddedNats(store_dir=tmp_path / "nats").start)
    url = await database_setup.create_database(pg.url(), "faults")
    schema = unique("f_")
    engine = create_engine(url, trace_sql=False)
    await create_scratch_schema(engine, schema)
    tag = unique()
    spec = StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",))
    yield {"pg": pg, "nats": nats, "url": url, "schema": schema, "engine": engine, "spec": spec, "tag": tag,
           "log": tmp_path / "worker.log"}
    await engine.dispose()
    nats.stop()
    pg.stop(mode="immediate")


def start_worker(w) -> subprocess.Popen:
    # Its log (every start appends to one file) tells the test when the worker has felt an outage.
    with open(w["log"], "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker", w["url"], w["nats"].url, w["schema"], w["spec"].name,
             w["tag"]],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT)


def worker_log(w) -> str:
    return Path(w["log"]).read_text(errors="replace")


def logged_since(w, mark: int, text: str) -> bool:
    return text in worker_log(w)[mark:]


async def applied(w) -> int:
    try:
        return sum(apps for _, apps in (await counters(w["engine"], w["schema"])).values())
    except Exception:
        return -1


async def test_every_event_is_applied_once_through_kills_of_worker_broker_and_database(world):
    w = world
    Ping = ping_event(w["spec"])
    keys = [f"k{i % 7}" for i in range(N)]
    await write_events(w["engine"], w["schema"], [Ping(key=k, amount=i) for i, k in enumerate(keys)], per_txn=25)
    worker = start_worker(w)
    try:
        await eventually(lambda: _at_least(applied(w), 50), timeout=60, what="consumption under way")
        print("applied at worker kill:", await applied(w))
        worker.send_signal(signal.SIGKILL)  # the process dies mid-batch, between commits and acks
        worker.wait()
        worker = start_worker(w)
        await eventually(lambda: _at_least(applied(w), 200), timeout=60, what="progress after worker restart")

        print("applied at broker kill:", await applied(w))
        mark = len(worker_log(w))
        w["nats"].stop(kill=True)  # the broker dies
        # It comes back once the worker has lost it (not after a guessed pause).
        await eventually(lambda: logged_since(w, mark, "fault-worker: disconnected from NATS"),
                         what="the worker to lose the broker")
        await asyncio.to_thread(w["nats"].start)
        await eventually(lambda: _at_least(applied(w), 350), timeout=60, what="progress after broker restart")

        print("applied at database crash:", await applied(w))
        mark = len(worker_log(w))
        await asyncio.to_thread(w["pg"].stop, mode="immediate")  # the database crashes
        # It comes back once the worker has failed to reach it (its relay polls the outbox every 0.5 s).
        await eventually(lambda: logged_since(w, mark, f"outbox relay for {w['schema']}:"),
                         what="the worker to fail to reach the database")
        await asyncio.to_thread(w["pg"].start)
        await eventually(lambda: _at_least(applied(w), N), timeout=90, what="every event applied")
        # Any late redelivery must change nothing: wait until the broker has none left to make.
        nc = await bus.connect(w["nats"].url, name="fault-probe")
        try:
            js = nc.jetstream()
            same = consumer_for(js, w["engine"], w["schema"], (Ping,))  # the worker's durable, by name
            await eventually(lambda: drained(js, same), what="nothing more to deliver to the worker")
        finally:
            await nc.close()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()

    expected: dict[str, tuple[int, int]] = {}
    for i, k in enumerate(keys):
        total, apps = expected.get(k, (0, 0))
        expected[k] = (total + i, apps + 1)
    assert await counters(w["engine"], w["schema"]) == expected


async def _at_least(coro, n: int) -> bool:
    return (await coro) >= n


async def test_a_database_outage_longer_than_the_old_backoff_dead_letters_nothing(world):
    """Events keep flowing while Postgres is down for many times the old retry budget (max_deliver x
    backoff, here ~0.4 s): the consumer pauses holding its batch, raises its alert flag, and applies
    everything after recovery — nothing dead-lettered, no delivery burned."""
    w = world
    Ping = ping_event(w["spec"])
    nc = await bus.connect(w["nats"].url, name="outage-test")
    js = nc.jetstream()
    await bus.ensure_streams(js, [w["spec"], dl.STREAM])
    consumer = consumer_for(js, w["engine"], w["schema"], (Ping,), max_deliver=MAX_DELIVER, backoff=(0.2,),
                            ack_wait=ACK_WAIT, alert_after=2.0, retry_cap=1.0, batch=32)
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    sent: list[int] = []

    async def send(n: int) -> None:
        for _ in range(n):
            i = len(sent)
            await js.publish(Ping.subject, Ping(key=f"k{i % 5}", amount=i).model_dump_json().encode(),
                             headers={"Nats-Msg-Id": str(uuid.uuid4())})
            sent.append(i)
            await asyncio.sleep(0.01)  # a stream of events over time, not one burst: they arrive during the outage

    try:
        await send(50)
        await eventually(lambda: _at_least(applied(w), 50), timeout=30, what="the first 50 applied")
        await asyncio.to_thread(w["pg"].stop, mode="immediate")
        await send(100)
        await eventually(lambda: _is(consumer.stats.waiting_long), timeout=30, what="the long-wait alert")
        # The outage outlasts what the server would allow the held batch had the consumer not kept it in
        # progress: ack_wait x max_deliver, after which every delivery would have been spent.
        await eventually(lambda: _paused_for(consumer, OUTAGE_SECONDS), timeout=OUTAGE_SECONDS + 30,
                         what="an outage longer than the held batch's deliveries")
        assert consumer.stats.dead_lettered == 0 and consumer.alive()
        await asyncio.to_thread(w["pg"].start)
        await send(50)
        await eventually(lambda: _at_least(applied(w), 200), timeout=90, what="every event applied")
        await eventually(lambda: drained(js, consumer), what="nothing more to deliver")
    finally:
        await stop_task(task, stop)
    assert await deadletter.list_all(js, consumer=letters_key(consumer)) == []
    assert consumer.stats.dead_lettered == 0 and consumer.stats.redelivered == 0
    assert consumer.stats.retried > 0 and not consumer.stats.waiting_long  # cleared on resume
    expected: dict[str, tuple[int, int]] = {}
    for i in sent:
        total, apps = expected.get(f"k{i % 5}", (0, 0))
        expected[f"k{i % 5}"] = (total + i, apps + 1)
    assert await counters(w["engine"], w["schema"]) == expected
    await nc.close()


async def test_a_service_whose_consumer_task_dies_exits_non_zero(world):
    w = world
    Ping = ping_event(w["spec"])
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.service_worker", w["schema"], w["spec"].name, w["tag"]],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": w["url"], "NATS_URL": w["nats"].url,
                       "LOG_FORMAT": "text"},
        stdout=log, stderr=subprocess.STDOUT, text=True)
    nc = await bus.connect(w["nats"].url, name="death-test")
    js = nc.jetstream()
    try:
        await bus.ensure_streams(js, [w["spec"], dl.STREAM])
        await js.publish(Ping.subject, Ping(key="alive").model_dump_json().encode())
        await eventually(lambda: _at_least(applied(w), 1), timeout=60, what="the service consuming")
        assert proc.poll() is None
        await js.publish(Ping.subject, Ping(key="die").model_dump_json().encode())
        code = await asyncio.to_thread(proc.wait, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
        await nc.close()
    log.seek(0)
    output = log.read()
    assert code == 1, output
    assert "consumer task" in output and "died" in output, output


async def _is(value: bool) -> bool:
    return value


def _paused_for(consumer, seconds: float) -> bool:
    since = consumer.stats.paused_since
    return since is not None and time.monotonic() - since >= seconds
