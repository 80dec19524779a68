"""Event-to-read-model latency: how long after its publish an event's effect is visible in the
gateway's read model, idle and under a steady load, beside the raw latency of the same servers.

    .venv/bin/python -m bench.event_latency [--probes 200] [--rate 500] [--seconds 20]
    .venv/bin/python -m bench.event_latency --idle-only --probes 200 --rest-every 5   # idle after idle

Two platform paths, each timed from the start of the publish until a query sees the row:
- external: an external opportunity into the SYNC stream (as a sync worker sends it) → the pipeline
  service's ingestion → its outbox → its relay → JetStream → the gateway's consumer → the read model;
- pipeline event: an opportunity event published straight into the PIPELINE stream (as the relay
  would) → the gateway's consumer → the read model.
The raw limit: nats-py publish into a scratch stream → a plain pull consumer (fetch, ack) in this
process → an asyncpg INSERT, committed → the same kind of query sees the row.
Under load, a background publisher sends external events at `--rate` per second while the probes run.
The pipeline service and the gateway run as processes of their own, as `partnerops up` runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.harness import Servers, log, servers, wait_until
from bench.pipeline_ingest import OWNERS, Process, env_for, external_events, make_token, percentile, versions
from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.db import plain_dsn
from runtime.embedded import free_port
from runtime.testing import platform_database, scratch_stream, unique

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
POLL_SECONDS = 0.001
VISIBLE_TIMEOUT = 10.0


def summary(samples: list[float]) -> dict[str, Any]:
    """Percentiles over the probes; a probe not visible within VISIBLE_TIMEOUT counts as that long (and
    is counted in `not_visible`), so a platform that falls behind shows it instead of failing the run."""
    missed = sum(1 for v in samples if v >= VISIBLE_TIMEOUT * 1000)
    return {"probes": len(samples), "not_visible": missed, "p50_ms": round(percentile(samples, 0.5), 1),
            "p90_ms": round(percentile(samples, 0.9), 1), "p99_ms": round(percentile(samples, 0.99), 1),
            "max_ms": round(max(samples), 1), "load": round(os.getloadavg()[0], 2)}


async def visible(poll: Callable[[], Awaitable[bool]], timeout: float | None = None) -> float:
    """Poll until `poll` is true; returns the perf_counter time it first was (or gave up)."""
    deadline = time.perf_counter() + (timeout or VISIBLE_TIMEOUT)
    while time.perf_counter() < deadline:
        if await poll():
            return time.perf_counter()
        await asyncio.sleep(POLL_SECONDS)
    return deadline


def probe_event(i: int, tag: str) -> sync.OpportunityExternalUpsertedV1:
    now = datetime.now(UTC)
    return sync.OpportunityExternalUpsertedV1(
        source=pc.ExternalSource.gcp, external_id=f"P{tag}{i:06d}", last_modified=now, created_at=now,
        name=f"Probe {i}", customer="Probe customer", stage="prospect", amount=Decimal("1000"), currency="USD",
        expected_close_date=(now + timedelta(days=30)).date(), partner_id=None, owner=OWNERS[i % len(OWNERS)],
        gcp=pc.GcpState(status=pc.GcpStatus.accepted))


def pipeline_event(i: int) -> pc.OpportunityCreatedV1:
    now = datetime.now(UTC)
    stage = pc.RESALE_STAGE_SET.stage("lead")
    return pc.OpportunityCreatedV1(opportunity=pc.Opportunity(
        id=uuid.uuid4(), version=1, name=f"Direct probe {i}", pipeline="resale", stage="lead", stage_name=stage.name,
        probability=stage.probability, outcome=stage.outcome, partner_id=None, customer="C", amount=Decimal("100"),
        currency="USD", expected_close_date=None, owner=OWNERS[i % len(OWNERS)], deal_model="resale",
        source="manual", created_at=now, updated_at=now, stage_entered_at=now))


async def run(s: Servers, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    urls = await platform_database(s.admin_url, unique("bench_latency_"))
    nc = await bus.connect(s.nats_url, name="bench-latency")
    js = nc.jetstream()
    await bus.ensure_streams(js, [pc.STREAM, sync.STREAM])
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    procs = {
        "pipeline": Process("pipeline", ["-m", "services.pipeline"], env_for(urls, "pipeline", s.nats_url), data_dir),
        "gateway": Process("gateway", ["-m", "gateway", "serve"],
                           env_for(urls, "gateway", s.nats_url, GATEWAY_PORT=str(port)), data_dir),
    }
    admin = await asyncpg.connect(plain_dsn(urls["admin"]))
    result: dict[str, Any] = {"servers": s.how, "versions": versions()}
    tag = uuid.uuid4().hex[:6]
    try:
        for p in procs.values():
            await p.start()
        token = await make_token(urls)

        async def gateway_up() -> int:
            try:
                async with httpx.AsyncClient(timeout=2, headers={"authorization": f"Bearer {token}"}) as client:
                    return int((await client.get(f"http://127.0.0.1:{port}/api/kpis/pipeline")).status_code == 200)
            except httpx.HTTPError:
                return 0

        await wait_until(gateway_up, 1, "gateway up", interval=0.2, stall=120.0)

        # ---- raw: publish → pull consumer → INSERT → visible
        spec = scratch_stream()
        await bus.ensure_streams(js, [spec])
        subject = f"{spec.subjects[0][:-2]}.raw"
        await admin.execute("CREATE TABLE raw_latency (key text PRIMARY KEY, at timestamptz DEFAULT now())")
        await js.add_consumer(spec.name, ConsumerConfig(durable_name="raw", filter_subject=subject,
                                                        ack_policy=AckPolicy.EXPLICIT,
                                                        deliver_policy=DeliverPolicy.ALL))
        psub = await js.pull_subscribe_bind(durable="raw", stream=spec.name)
        writer = await asyncpg.connect(plain_dsn(urls["admin"]))
        stop = asyncio.Event()

        async def raw_consumer() -> None:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                    for m in await psub.fetch(1, timeout=0.5):
                        await writer.execute("INSERT INTO raw_latency (key) VALUES ($1)", m.data.decode())
                        await m.ack()

        consumer_task = asyncio.create_task(raw_consumer())
        rest_every = args.rest_every  # idle phase only

        async def pause(i: int) -> None:
            # With --rest-every, a rest longer than the consumers' fetch timeout (1 s) now and then, so the
            # next probe finds every consumer idle, its fetch expired and renewed, as a lone event does.
            await asyncio.sleep(args.rest if rest_every and (i + 1) % rest_every == 0 else args.gap)

        async def raw_probes(n: int, budget: float = float("inf")) -> list[float]:
            out = []
            until = time.perf_counter() + budget
            for i in range(n):
                if time.perf_counter() > until:
                    break
                key = f"{tag}-{i}-{uuid.uuid4().hex[:6]}"
                t0 = time.perf_counter()
                await js.publish(subject, key.encode())
                t1 = await visible(lambda k=key: _exists(admin, "SELECT 1 FROM raw_latency WHERE key = $1", k))
                out.append((t1 - t0) * 1000)
                await pause(i)
            return out

        async def external_probes(n: int, offset: int, budget: float = float("inf")) -> list[float]:
            out = []
            until = time.perf_counter() + budget
            for i in range(offset, offset + n):
                if time.perf_counter() > until:
                    break
                e = probe_event(i, tag)
                t0 = time.perf_counter()
                await js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})
                t1 = await visible(lambda e=e: _exists(
                    admin, "SELECT 1 FROM pipeline.opportunity p JOIN gateway.pipeline_opportunity g ON g.id = p.id "
                    "WHERE p.source = 'gcp' AND p.external_id = $1", e.external_id))
                out.append((t1 - t0) * 1000)
                await pause(i)
            return out

        async def pipeline_probes(n: int, offset: int, budget: float = float("inf")) -> list[float]:
            out = []
            until = time.perf_counter() + budget
            for i in range(offset, offset + n):
                if time.perf_counter() > until:
                    break
                e = pipeline_event(i)
                t0 = time.perf_counter()
                await js.publish(e.subject, e.model_dump_json().encode(), headers={"Nats-Msg-Id": str(e.event_id)})
                t1 = await visible(lambda e=e: _exists(
                    admin, "SELECT 1 FROM gateway.pipeline_opportunity WHERE id = $1", e.opportunity.id))
                out.append((t1 - t0) * 1000)
                await pause(i)
            return out

        # Warm up every path (connections, prepared statements, the first batch of each consumer).
        await raw_probes(10)
        await external_probes(10, 900_000)
        await pipeline_probes(10, 900_000)
        idle = {}
        for name, make in (("raw (publish → pull consumer → INSERT)", lambda: raw_probes(args.probes)),
                           ("external event → pipeline → relay → gateway read model",
                            lambda: external_probes(args.probes, 0)),
                           ("pipeline event → gateway read model", lambda: pipeline_probes(args.probes, 0))):
            samples = await make()
            idle[name] = summary(samples)
            result.setdefault("idle_samples_ms", {})[name] = [round(v, 2) for v in samples]
            log(f"idle {name}: {idle[name]}")
        result["idle"] = idle
        if args.idle_only:
            stop.set()
            consumer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer_task
            await writer.close()
            return result

        # ---- under load: external events at --rate per second in the background
        rest_every = 0
        background, _, _ = external_events(int(args.rate * (args.seconds + 30)), [uuid.uuid4()], 0.25,
                                           datetime.now(UTC), seed=7)
        background = [e.model_copy(update={"partner_id": None}) for e in background]
        sent = 0
        load_stop = asyncio.Event()

        async def publisher() -> None:
            nonlocal sent
            js_async = nc.jetstream(publish_async_max_pending=1024)
            start = time.perf_counter()
            while not load_stop.is_set() and sent < len(background):
                due = int((time.perf_counter() - start) * args.rate)
                while sent < min(due, len(background)):
                    e = background[sent]
                    await js_async.publish_async(e.subject, e.model_dump_json().encode(),
                                                 headers={"Nats-Msg-Id": str(e.event_id)})
                    sent += 1
                await asyncio.sleep(0.005)

        loaded_task = asyncio.create_task(publisher())
        await asyncio.sleep(3)  # the load reaches its steady state
        cpu_before = {name: p.cpu_seconds() for name, p in procs.items()}
        t_load = time.perf_counter()
        sent_before = sent
        per_path = max(1, int(args.seconds / 3 / max(args.gap, 0.001)))
        budget = args.seconds / 3  # seconds of probing per path (a probe that never shows ends it later)
        loaded = {}
        for name, make in (("raw (publish → pull consumer → INSERT)", lambda: raw_probes(per_path, budget)),
                           ("pipeline event → gateway read model", lambda: pipeline_probes(per_path, 100_000, budget)),
                           ("external event → pipeline → relay → gateway read model",
                            lambda: external_probes(per_path, 100_000, budget))):
            loaded[name] = summary(await make())
            log(f"loaded {name}: {loaded[name]}")
        elapsed = time.perf_counter() - t_load
        load_stop.set()
        await loaded_task
        achieved = (sent - sent_before) / elapsed
        backlog = int(await admin.fetchval(
            "SELECT count(*) FROM pipeline.opportunity WHERE external_id IS NOT NULL")) if sent else 0
        result["loaded"] = loaded
        result["load"] = {"target_events_per_second": args.rate, "achieved_publish_rate": round(achieved, 1),
                          "seconds": round(elapsed, 1), "background_sent": sent,
                          "opportunities_stored_at_end": backlog,
                          "service_cpu_seconds": {n: round(p.cpu_seconds() - cpu_before[n], 1)
                                                  for n, p in procs.items()}}
        log(f"load: {result['load']}")
        stop.set()
        consumer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer_task
        await writer.close()
    finally:
        await admin.close()
        await nc.close()
        for p in procs.values():
            await p.stop()
    return result


async def _exists(conn: asyncpg.Connection, query: str, key: Any) -> bool:
    return await conn.fetchval(query, key) is not None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.event_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200, help="probes per path, idle")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between probes")
    parser.add_argument("--rate", type=float, default=500.0, help="background events per second under load")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of probing under load (all paths)")
    parser.add_argument("--rest-every", type=int, default=0,
                        help="idle: rest --rest seconds after every N-th probe (0: never)")
    parser.add_argument("--rest", type=float, default=1.5, help="seconds of each rest (see --rest-every)")
    parser.add_argument("--idle-only", action="store_true", help="skip the phase under load")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    tag = uuid.uuid4().hex[:10]
    wall = time.perf_counter()
    with servers(ROOT / ".data" / f"bench-{tag}") as s:
        result = asyncio.run(run(s, args, ROOT / ".data" / f"bench-logs-{tag}"))
    result.update(benchmark="event_latency", started_at=started_at,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform()},
                  wall_seconds=round(time.perf_counter() - wall, 1))
    print()
    for phase in ("idle", "loaded"):
        print(f"{phase}:")
        for name, f in result.get(phase, {}).items():
            print(f"  {name}: p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms (load {f['load']})")
    print(f"load: {result.get('load')}")
    out = args.out or RESULTS_DIR / f"event-latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; results written to {out}")


if __name__ == "__main__":
    main()
