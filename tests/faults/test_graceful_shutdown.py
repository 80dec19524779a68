"""SIGTERM drains a service: the batch being applied is finished and acked, a batch held on a failure
and the batch fetched ahead are nak'ed, and the process exits within its bound. Proof: right after
the process has gone, a fetch on its durable gets every event it did not apply (one it had fetched
and left unanswered would wait out the 60 s ack_wait instead), and a second process applies
everything left, each event exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from contracts import deadletters as dl
from contracts.base import StreamSpec
from runtime import bus, database_setup
from runtime.db import create_engine
from runtime.inbox import DRAIN_SECONDS
from runtime.testing import create_scratch_schema, eventually, ping_event, unique
from tests.backbone.helpers import counters

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)
# The service's own bound (runtime.service.main gives shutdown 30 s); the test waits this long at most.
STOP_BOUND = 30.0
N = 240


@pytest.fixture
async def world(servers, tmp_path):
    url = await database_setup.create_database(servers.admin_url, unique("gs_"))
    schema = unique("g_")
    engine = create_engine(url, trace_sql=False)
    await create_scratch_schema(engine, schema)
    tag = unique()
    spec = StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",))
    nc = await bus.connect(servers.nats_url, name="graceful-test")
    js = nc.jetstream()
    await bus.ensure_streams(js, [spec, dl.STREAM], replicas=1)
    yield {"url": url, "schema": schema, "engine": engine, "spec": spec, "tag": tag, "js": js,
           "nats_url": servers.nats_url, "tmp": tmp_path}
    await js.delete_stream(spec.name)
    await nc.close()
    await engine.dispose()


def start(w, **env: str) -> tuple[subprocess.Popen, tempfile._TemporaryFileWrapper]:
    log = tempfile.NamedTemporaryFile("w+", dir=w["tmp"], suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.service_worker", w["schema"], w["spec"].name, w["tag"]],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": w["url"], "NATS_URL": w["nats_url"],
             "LOG_FORMAT": "text", "BUS_FETCH_BATCH": "16", "BUS_ACK_WAIT_SECONDS": "60", **env})
    return proc, log


async def applied(w) -> int:
    try:
        return sum(apps for _, apps in (await counters(w["engine"], w["schema"])).values())
    except Exception:
        return -1


async def ack_pending(w) -> tuple[int, int]:
    info = await w["js"].consumer_info(w["spec"].name, durable(w))
    return info.num_ack_pending, info.num_pending


def durable(w) -> str:
    return f"{w['schema']}__{w['spec'].name}"


async def available_now(w) -> list[str]:
    """The keys of every message the durable would deliver right now (fetched, then nak'ed back)."""
    sub = await w["js"].pull_subscribe_bind(durable(w), stream=w["spec"].name)
    got = []
    try:
        while True:
            try:
                msgs = await sub.fetch(batch=64, timeout=2)
            except Exception:  # nothing more within the timeout
                break
            got.extend(msgs)
    finally:
        for m in got:
            await m.nak()
        await sub.unsubscribe()
    import json

    return [json.loads(m.data)["key"] for m in got]


async def publish(w, events) -> None:
    for e in events:
        await w["js"].publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})


def expected_of(events) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for e in events:
        total, apps = out.get(e.key, (0, 0))
        out[e.key] = (total + e.amount, apps + 1)
    return out


async def sigterm_and_wait(proc: subprocess.Popen, log) -> float:
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(proc.wait, STOP_BOUND)  # raises TimeoutExpired past the bound
    took = time.monotonic() - began
    log.seek(0)
    assert code == 0, log.read()[-3000:]
    return took


async def test_sigterm_mid_batch_acks_what_it_applied_and_naks_what_it_fetched_ahead(world):
    w = world
    Ping = ping_event(w["spec"])
    events = [Ping(key=f"k{i % 6}", amount=i) for i in range(N)]
    await publish(w, events)
    first, log1 = start(w, WORKER_SLOW_MS="25")
    try:
        await eventually(lambda: _at_least(applied(w), 30), timeout=120, what="the first batches applied")
        took = await sigterm_and_wait(first, log1)
    finally:
        if first.poll() is None:
            first.kill()
    at_stop = await applied(w)
    assert 0 < at_stop < N, "stopped mid-stream"
    # Nothing was left holding a message: each would wait out the 60 s ack_wait before redelivery.
    assert len(await available_now(w)) == N - at_stop, "messages left unanswered by the stopped process"
    print(f"stopped {took:.1f}s after SIGTERM with {at_stop} of {N} applied")

    second, log2 = start(w)
    try:
        await eventually(lambda: _at_least(applied(w), N), timeout=120, what="the rest applied by the next process")
        await eventually(lambda: _is_zero(ack_pending(w)), what="nothing more to deliver")
        await sigterm_and_wait(second, log2)
    finally:
        if second.poll() is None:
            second.kill()
    assert await counters(w["engine"], w["schema"]) == expected_of(events)  # each applied exactly once


async def test_sigterm_while_a_message_is_held_on_failure_naks_it_for_the_next_process(world):
    w = world
    Ping = ping_event(w["spec"])
    events = [Ping(key="ok", amount=1), Ping(key="stuck", amount=7), Ping(key="ok", amount=2)]
    first, log1 = start(w, WORKER_FAIL_KEY="stuck")
    try:
        await publish(w, events)
        # "stuck" fails in this process and is retried after a backoff (held, not acked); the events
        # after it wait behind it, in order.
        await eventually(lambda: _logged(log1, "failed (try"), timeout=60, what="the held retry")
        took = await sigterm_and_wait(first, log1)
    finally:
        if first.poll() is None:
            first.kill()
    assert took < DRAIN_SECONDS + 5, "a held message must not keep the process from stopping"
    log1.seek(0)
    assert "nak'ed for redelivery" in log1.read()
    assert sorted(await available_now(w)) == ["ok", "stuck"]
    second, log2 = start(w)
    try:
        await eventually(lambda: _at_least(applied(w), 3), timeout=60, what="all three applied by the next process")
        await eventually(lambda: _is_zero(ack_pending(w)), what="nothing more to deliver")
        await sigterm_and_wait(second, log2)
    finally:
        if second.poll() is None:
            second.kill()
    assert await counters(w["engine"], w["schema"]) == {"ok": (3, 2), "stuck": (7, 1)}


async def _at_least(coro, n: int) -> bool:
    return (await coro) >= n


async def _is_zero(coro) -> bool:
    ack_waiting, pending = await coro
    return ack_waiting == 0 and pending == 0


def _logged(log, text_: str) -> bool:
    log.seek(0)
    return text_ in log.read()
