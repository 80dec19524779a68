"""AWS backfill benchmark: ACE opportunities from a local Partner Central endpoint (the tests' HTTP fake:
boto3 pointed at it with `endpoint_url`, every request validated with botocore's own shapes) read by the
AWS sync worker's first pass, into the pipeline service and on into the gateway's KPI read model —
beside the raw limits measured in the same run on the same servers.

    .venv/bin/python -m bench.aws_backfill [--opportunities 100000] [--page-size 100]

The worker, the pipeline service and the gateway run as processes of their own, as `partnerops up`
runs them. Servers: embedded NATS and Postgres under .data/bench-<random> (removed afterwards) unless
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.harness import Phase, Servers, log, rate, servers, wait_until
from bench.pipeline_ingest import Process, env_for, make_token, raw_jetstream, server_cpu_seconds, versions
from integrations.aws_partner_central import mapping
from integrations.aws_partner_central.client import make_client
from integrations.aws_partner_central.settings import AwsSyncSettings
from runtime import bus
from runtime.db import plain_dsn
from runtime.embedded import free_port
from runtime.testing import platform_database, prepare_streams, unique
from tests.integrations.ace import opportunity
from tests.integrations.fake_partner_central import Fake

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CATALOG = "Sandbox"
STAGES = ("Prospect", "Qualified", "Technical Validation", "Business Validation", "Committed", "Launched",
          "Closed Lost")
AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIDFAKEFORBENCH", "AWS_SECRET_ACCESS_KEY": "fake-secret-for-bench"}


class SortedFake(Fake):
    """The fake with its list sorted once: the catalog does not change during a backfill, and sorting
    100,000 records on every page would be the fake's cost, not the worker's."""

    _sorted: list[dict[str, Any]] | None = None

    def ListOpportunities(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._sorted is None:
            self._sorted = sorted(self.opportunities.values(), key=lambda o: (o["LastModifiedDate"], o["Id"]))
        start, size = int(params.get("NextToken") or 0), int(params.get("MaxResults") or 20)
        page = self._sorted[start:start + size]
        out: dict[str, Any] = {"OpportunitySummaries": [
            {"Catalog": o["Catalog"], "Id": o["Id"], "LastModifiedDate": o["LastModifiedDate"]} for o in page]}
        if start + size < len(self._sorted):
            out["NextToken"] = str(start + size)
        return out


def catalog(n: int, now: datetime) -> dict[str, dict[str, Any]]:
    out = {}
    for i in range(n):
        ident = f"O{7_000_000_000 + i}"
        out[ident] = opportunity(ident, modified=now - timedelta(days=30) + timedelta(seconds=i), stage=STAGES[i % 7],
                                 title=f"Backfill {i}", company=f"Customer {i % 3000}",
                                 monthly=f"{100 + i % 900}.00", review="Approved")
        out[ident]["Catalog"] = CATALOG
    return out


def raw_boto3(endpoint: str, ids: list[str], page_size: int) -> Phase:
    """The read ceiling of a sequential client: boto3 against the same fake, one ListOpportunities page per
    page_size records and GetOpportunity + GetAwsOpportunitySummary for each, nothing else."""
    client = make_client(AwsSyncSettings(endpoint_url=endpoint, catalog=CATALOG, retry_mode="standard"),
                         aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    t0 = time.perf_counter()
    for i in range(0, len(ids), page_size):
        client.list_opportunities(Catalog=CATALOG, MaxResults=page_size, NextToken=str(i) if i else "0")
        for ident in ids[i:i + page_size]:
            client.get_opportunity(Catalog=CATALOG, Identifier=ident)
            client.get_aws_opportunity_summary(Catalog=CATALOG, RelatedOpportunityIdentifier=ident)
    seconds = time.perf_counter() - t0
    log(f"raw boto3 reads: {len(ids)} opportunities in {seconds:.2f}s = {rate(len(ids), seconds):,.0f}/s")
    return Phase("raw boto3 reads against the fake (list page + GetOpportunity + GetAwsOpportunitySummary)",
                 len(ids), seconds, "one client, sequential, as the worker reads; a sample of the catalog")


async def run(s: Servers, args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    urls = await platform_database(s.admin_url, unique("bench_aws_"))
    await asyncio.to_thread(prepare_streams, s.nats_url)
    now = datetime.now(UTC)
    fake = SortedFake()
    fake.opportunities = catalog(args.opportunities, now)
    server, endpoint = fake.serve()
    ids = sorted(fake.opportunities, key=lambda i: fake.opportunities[i]["LastModifiedDate"])
    result: dict[str, Any] = {"servers": s.how, "versions": versions()}
    phases = [await asyncio.to_thread(raw_boto3, endpoint, ids[:min(len(ids), args.raw_sample)], args.page_size)]
    nc = await bus.connect(s.nats_url, name="bench")
    try:
        events = [mapping.to_event(fake.opportunities[i], None, now=now) for i in ids]
        phases += await raw_jetstream(nc, [(str(e.event_id), e.model_dump_json().encode()) for e in events])
    finally:
        await nc.close()
    fake.calls.clear()
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    procs = {
        "pipeline": Process("pipeline", ["-m", "services.pipeline"], env_for(urls, "pipeline", s.nats_url), data_dir),
        "gateway": Process("gateway", ["-m", "gateway", "serve"],
                           env_for(urls, "gateway", s.nats_url, GATEWAY_PORT=str(port)), data_dir),
    }
    worker = Process("aws-sync", ["-m", "integrations.aws_partner_central"], env_for(
        urls, "aws_sync", s.nats_url, SERVICE_NAME="aws-sync", OUTBOX_POLL_SECONDS="0.2",
        AWS_PARTNER_CENTRAL_CATALOG=CATALOG, AWS_PARTNER_CENTRAL_ENDPOINT_URL=endpoint,
        AWS_PARTNER_CENTRAL_PAGE_SIZE=str(args.page_size), AWS_PARTNER_CENTRAL_RETRY_MODE="standard", **AWS_ENV),
        data_dir)
    admin = await asyncpg.connect(plain_dsn(urls["admin"]))
    try:
        for p in procs.values():
            await p.start()
        token = await make_token(urls)

        async def gateway_up() -> int:
            try:
                async with httpx.AsyncClient(timeout=2, headers={"authorization": f"Bearer {token}"}) as client:
                    return int((await client.get(f"{gateway_url}/api/kpis/pipeline")).status_code == 200)
            except httpx.HTTPError:
                return 0

        await wait_until(gateway_up, 1, "gateway up", interval=0.2, stall=180.0, report_every=10.0)
        n = len(ids)
        stamps: dict[str, float] = {}

        async def in_pipeline() -> int:
            return int(await admin.fetchval("SELECT count(*) FROM pipeline.opportunity WHERE source = 'aws'"))

        async def in_read_model() -> int:
            if "pipeline" not in stamps and await in_pipeline() >= n:
                stamps["pipeline"] = time.monotonic()
            return int(await admin.fetchval("SELECT count(*) FROM gateway.pipeline_opportunity"))

        cpu_before = server_cpu_seconds(args.data_marker)
        started = time.monotonic()
        await worker.start()  # a new installation pulls at once: the backfill
        procs["aws-sync"] = worker
        finished = await wait_until(in_read_model, n, "KPI read model rows", interval=1.0, stall=180.0,
                                    report_every=15.0)
        stamps.setdefault("pipeline", finished)
        cpu = {name: round(p.cpu_seconds(), 1) for name, p in procs.items()}
        cpu.update({name: round(v - cpu_before.get(name, 0.0), 1)
                    for name, v in server_cpu_seconds(args.data_marker).items()})
        phases += [
            Phase("worker backfill → every opportunity in the pipeline", n, stamps["pipeline"] - started,
                  "worker start → pages read, each record read twice, version + outbox + cursor in one "
                  "transaction, relay → JetStream → pipeline inbox → upsert"),
            Phase("worker backfill → gateway KPI read model complete", n, finished - started,
                  "… → pipeline outbox → relay → gateway consumers → read model rows and aggregates",
                  extra={"cpu_seconds": cpu}),
        ]
        check = {
            "pipeline_rows": await in_pipeline(), "read_model_rows": await in_read_model(),
            "versions_recorded": await admin.fetchval("SELECT count(*) FROM aws_sync.synced_opportunity"),
            "events_staged": await admin.fetchval("SELECT count(*) FROM aws_sync.outbox WHERE aggregate LIKE "
                                                  "'external:%'"),
            "get_opportunity_calls": fake.count("GetOpportunity"), "invalid_requests": len(fake.invalid),
        }
        async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {token}"}) as client:
            kpis = (await client.get(f"{gateway_url}/api/kpis/pipeline", params={"pipeline": "cosell"})).json()
        result["kpis_sample"] = {k: kpis[k] for k in list(kpis)[:6]} if isinstance(kpis, dict) else kpis
        result["check"] = check
        if (check["pipeline_rows"], check["read_model_rows"], check["versions_recorded"],
                check["events_staged"]) != (n, n, n, n) or check["invalid_requests"]:
            raise RuntimeError(f"the backfill is not exact: {check}")
    finally:
        await admin.close()
        for p in procs.values():
            await p.stop()
        server.shutdown()
        if s.how != "embedded":
            with contextlib.suppress(Exception):
                from sqlalchemy.engine import make_url

                conn = await asyncpg.connect(plain_dsn(s.admin_url))
                await conn.execute(f'DROP DATABASE "{make_url(urls["admin"]).database}" WITH (FORCE)')
                await conn.close()
    result["phases"] = {p.name: p.as_dict() for p in phases}
    by = {p.name: p.per_second for p in phases}
    e2e = by["worker backfill → gateway KPI read model complete"]
    result["ratios"] = {
        "backfill_e2e / raw_boto3_reads": round(e2e / by[phases[0].name], 4),
        "backfill_e2e / raw_jetstream_publish_async": round(e2e / by[
            "raw JetStream publish (publish_async, 256 pending)"], 4),
        "backfill_e2e / raw_jetstream_consume": round(e2e / by["raw JetStream consume (pull fetch + ack)"], 4),
    }
    return result


def print_table(result: dict[str, Any]) -> None:
    print(f"\nAWS backfill — {result['opportunities']} ACE opportunities, {result['machine']['cpus']} CPUs")
    width = max(len(n) for n in result["phases"]) + 2
    print(f"{'phase':<{width}}{'count':>9}{'seconds':>10}{'per second':>13}")
    for name, p in result["phases"].items():
        print(f"{name:<{width}}{p['count']:>9}{p['seconds']:>10.2f}{p['per_second']:>13,.0f}")
    for name, value in result["ratios"].items():
        print(f"  {name}: {value * 100:.1f} %")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.aws_backfill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=100_000, help="ACE opportunities in the catalog")
    parser.add_argument("--page-size", type=int, default=100, help="ListOpportunities MaxResults (1-100)")
    parser.add_argument("--raw-sample", type=int, default=2000, help="opportunities read by the raw boto3 client")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    tag = uuid.uuid4().hex[:10]
    wall = time.perf_counter()
    args.data_marker = f"bench-{tag}"
    with servers(ROOT / ".data" / f"bench-{tag}") as s:
        result = asyncio.run(run(s, args, ROOT / ".data" / f"bench-logs-{tag}"))
    result.update(benchmark="aws_backfill", started_at=started_at, opportunities=args.opportunities,
                  machine={"cpus": os.cpu_count(), "platform": platform.platform(),
                           "load_average_at_end": os.getloadavg()},
                  wall_seconds=round(time.perf_counter() - wall, 1))
    print_table(result)
    out = args.out or RESULTS_DIR / f"aws-backfill-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwall time {result['wall_seconds']}s; results written to {out}")


if __name__ == "__main__":
    main()
