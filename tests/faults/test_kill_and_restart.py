"""Kill and restart the database, the broker and the worker process mid-stream: the end state must
be exactly what a fault-free run gives — every event applied once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from contracts.base import StreamSpec
from runtime import database_setup
from runtime.db import create_engine
from runtime.embedded import EmbeddedNats, EmbeddedPostgres
from runtime.testing import ping_event, unique
from tests.backbone.helpers import counters, eventually
from tests.backbone.test_outbox_relay import write_events

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)
N = 600


@pytest.fixture
async def world(tmp_path):
    """A Postgres and a NATS of this test's own: they are about to be killed."""
    pg = await asyncio.to_thread(EmbeddedPostgres(base_dir=tmp_path / "pg").start)
    nats = await asyncio.to_thread(EmbeddedNats(store_dir=tmp_path / "nats").start)
    url = await database_setup.create_database(pg.url(), "faults")
    schema = unique("f_")
    engine = create_engine(url, trace_sql=False)
    async with engine.begin() as conn:
        from sqlalchemy import text

        for stmt in (
            f"CREATE SCHEMA {schema}",
            f"CREATE TABLE {schema}.outbox (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL"
            " UNIQUE, subject text NOT NULL, aggregate text NOT NULL, payload text NOT NULL, headers jsonb NOT NULL"
            " DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now(), sent_at timestamptz)",
            f"CREATE TABLE {schema}.inbox (consumer text, event_id uuid, processed_at timestamptz NOT NULL DEFAULT"
            " now(), PRIMARY KEY (consumer, event_id))",
            f"CREATE TABLE {schema}.counter (key text PRIMARY KEY, total bigint NOT NULL, applications int NOT NULL)",
        ):
            await conn.execute(text(stmt))
    tag = unique()
    spec = StreamSpec(name=tag.upper(), subjects=(f"{tag}.>",))
    yield {"pg": pg, "nats": nats, "url": url, "schema": schema, "engine": engine, "spec": spec, "tag": tag}
    await engine.dispose()
    nats.stop()
    pg.stop(mode="immediate")


def start_worker(w) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.faults.worker", w["url"], w["nats"].url, w["schema"], w["spec"].name, w["tag"]],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
        w["nats"].stop(kill=True)  # the broker dies
        await asyncio.sleep(1)
        await asyncio.to_thread(w["nats"].start)
        await eventually(lambda: _at_least(applied(w), 350), timeout=60, what="progress after broker restart")

        print("applied at database crash:", await applied(w))
        await asyncio.to_thread(w["pg"].stop, mode="immediate")  # the database crashes
        await asyncio.sleep(1)
        await asyncio.to_thread(w["pg"].start)
        await eventually(lambda: _at_least(applied(w), N), timeout=90, what="every event applied")
        await asyncio.sleep(3)  # let any late redelivery arrive: it must change nothing
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
