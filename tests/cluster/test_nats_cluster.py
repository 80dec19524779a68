"""The three-node NATS cluster the harness starts (runtime.embedded.NatsCluster): JetStream with file
storage and `sync_interval: always` on every node, the platform's per-component logins on every node,
streams R3, and the same code (bus.connect, the outbox relay, the inbox consumer) running against
the cluster's URLs through the SIGKILL of the node that leads the stream."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from contracts import deadletters as dl
from contracts import pipeline as pc
from contracts.base import StreamSpec
from contracts.registry import STREAMS
from runtime import bus, database_setup
from runtime.db import create_engine
from runtime.embedded import NatsCluster
from runtime.testing import create_scratch_schema, eventually, ping_event, prepare_streams, unique
from tests.backbone.helpers import consumer_for, counters, drained, write_events

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)
N = 400


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    c = NatsCluster(base_dir=tmp_path_factory.mktemp("cluster")).start()
    try:
        prepare_streams(c.url, replicas=c.replicas)
        yield c
    finally:
        c.stop()


def test_every_node_syncs_each_write_clusters_on_loopback_and_asks_for_logins(cluster: NatsCluster):
    assert len(cluster.nodes) == 3
    for node in cluster.nodes:
        conf = node.config_file.read_text()
        assert "sync_interval: always" in conf and "store_dir" in conf
        assert 'listen: "127.0.0.1:' in conf and "no_advertise: true" in conf
        assert conf.count("nats-route://") == 2  # routes to the two others, with the cluster's own login
        assert 'user: "pipeline"' in conf and 'user: "cli"' in conf
    assert len(cluster.url.split(",")) == 3


async def test_streams_are_r3_with_a_leader_and_two_current_replicas(cluster: NatsCluster):
    nc = await bus.connect(cluster.url, name="test")
    try:
        js = nc.jetstream()
        for spec in STREAMS:
            info = await js.stream_info(spec.name)
            assert info.config.num_replicas == 3, spec.name
            assert str(getattr(info.config.storage, "value", info.config.storage)) == "file"
            assert info.cluster is not None and info.cluster.leader
            await eventually(lambda s=spec.name: _replicas_current(js, s), what=f"{spec.name}'s replicas current")
    finally:
        await nc.close()


async def _replicas_current(js, stream: str) -> bool:
    info = await js.stream_info(stream)
    return len(info.cluster.replicas or []) == 2 and all(r.current for r in info.cluster.replicas)


async def _unless_electing(check) -> bool:
    """A JetStream API call can time out while the cluster elects a new leader after a kill: not yet."""
    try:
        return bool(await check)
    except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError, nats.errors.NoRespondersError):
        return False


async def test_each_component_keeps_its_own_permissions_on_every_node(cluster: NatsCluster):
    with pytest.raises(Exception):  # noqa: B017 - anonymous: refused (an authorization error or no server)
        await nats.connect(bus.servers(cluster.anonymous_url), allow_reconnect=False, connect_timeout=2)
    for node in cluster.nodes:
        denied: list[Exception] = []

        async def on_error(exc: Exception, denied: list[Exception] = denied) -> None:
            denied.append(exc)

        url = node.url_for("pipeline")
        nc = await nats.connect(url, allow_reconnect=False, error_cb=on_error, inbox_prefix=bus.inbox_prefix(url))
        try:
            await nc.publish("commissions.entries.posted.v2", b"{}")  # not the pipeline's subject
            await nc.flush()
            await eventually(lambda d=denied: d, what="the permission violation")
            assert "permissions violation" in str(denied[0]).lower()
            ack = await nc.jetstream().publish(pc.PartnerCreatedV1.subject, b"{}")  # its own: stored, R3
            assert ack.stream == "PIPELINE"
        finally:
            await nc.close()


@pytest.fixture
async def world(servers, cluster: NatsCluster):
    url = await database_setup.create_database(servers.admin_url, unique("cl_"))
    schema = unique("c_")
    engine = create_engine(url, trace_sql=False)
    await create_scratch_schema(engine, schema)
    tag = unique()
    yield {"url": url, "schema": schema, "engine": engine, "spec": StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",)),
           "tag": tag}
    await engine.dispose()


async def test_relay_and_consumer_carry_on_through_the_sigkill_of_the_stream_leader(world, cluster: NatsCluster):
    """The fault worker (outbox relay + inbox consumer, tests/faults/worker.py) on the cluster's URLs, with
    its stream R3: the node leading the stream is SIGKILLed mid-stream and restarted; every event is
    applied exactly once and the restarted node catches up."""
    w = world
    Ping = ping_event(w["spec"])
    keys = [f"k{i % 5}" for i in range(N)]
    await write_events(w["engine"], w["schema"], [Ping(key=k, amount=i) for i, k in enumerate(keys)], per_txn=20)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BUS_STREAM_REPLICAS": "3"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.worker", w["url"], cluster.url, w["schema"], w["spec"].name, w["tag"]],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nc = await bus.connect(cluster.url, name="probe")
    js = nc.jetstream()
    try:
        await eventually(lambda: _applied_at_least(w, 40), timeout=120, what="consumption under way")
        info = await js.stream_info(w["spec"].name)
        assert info.config.num_replicas == 3
        leader = next(n for n in cluster.nodes if n.server_name == info.cluster.leader)
        leader.stop(kill=True)
        at_kill = await _applied(w)
        await eventually(lambda: _applied_at_least(w, at_kill + 40), timeout=120, what="progress with a node down")
        await asyncio.to_thread(leader.start)
        await eventually(lambda: _applied_at_least(w, N), timeout=180, what="every event applied")
        same = consumer_for(js, w["engine"], w["schema"], (Ping,))  # the worker's durable, by name
        await eventually(lambda: _unless_electing(drained(js, same)), timeout=60, what="nothing more to deliver")
        await eventually(lambda: _unless_electing(_replicas_current(js, w["spec"].name)), timeout=60,
                         what="the node caught up")
        info = await js.stream_info(w["spec"].name)
        assert info.state.messages == N
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        for node in cluster.nodes:  # the next test finds the whole cluster
            if not node.alive():
                await asyncio.to_thread(node.start)
        await nc.close()
    expected: dict[str, tuple[int, int]] = {}
    for i, k in enumerate(keys):
        total, apps = expected.get(k, (0, 0))
        expected[k] = (total + i, apps + 1)
    assert await counters(w["engine"], w["schema"]) == expected
    assert dl.STREAM.name  # the worker made the dead-letter stream R3 too
    assert (await _stream_replicas(cluster, dl.STREAM.name)) == 3


async def _stream_replicas(cluster: NatsCluster, name: str) -> int:
    nc = await bus.connect(cluster.url, name="probe")
    try:
        return (await nc.jetstream().stream_info(name)).config.num_replicas
    finally:
        await nc.close()


async def _applied(w) -> int:
    try:
        return sum(apps for _, apps in (await counters(w["engine"], w["schema"])).values())
    except Exception:
        return -1


async def _applied_at_least(w, n: int) -> bool:
    return await _applied(w) >= n
