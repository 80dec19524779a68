"""Relationships at scale: the heatmap, the attention list and the dashboard's health with 100,000
contacts and 5,000,000 interactions, and the cost of logging one interaction — beside a plain SQL
aggregate over the same rows in the same run (the raw limit).

    .venv/bin/python -m bench.relationships_read [--contacts 100000] [--interactions 5000000] [--requests 20]

The relationships service runs in-process; requests go over NATS request/reply as the gateway sends
them (the HTTP hop is measured by bench.kpi_read). Rows are loaded with SQL (generate_series), the
contacts' stored strength state (energy, last touch, cold date) with them, so the load takes minutes,
not hours. Servers: embedded NATS and Postgres under .data/bench-<random> (removed afterwards) unless
TEST_DATABASE_URL and TEST_NATS_URL name existing servers. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.harness import log, servers
from bench.pipeline_ingest import percentile, versions
from contracts import contacts as cc
from runtime import bus
from runtime.commands import send
from runtime.db import plain_dsn
from runtime.service import shutdown, start
from runtime.settings import Settings
from runtime.testing import platform_database, unique
from services.relationships.handlers import definition

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
S = "relationships"


async def load(conn: asyncpg.Connection, contacts: int, interactions: int, orgs: int, deals: int) -> dict[str, float]:
    """Organisations, open deals (a fifth linked to a contact), contacts with their strength state, and
    interactions spread over the contacts and the last two years."""
    timings: dict[str, float] = {}
    t = time.monotonic()
    await conn.execute(f"""
        INSERT INTO {S}.pipeline_partner (id, name, owner, archived, version)
        SELECT md5('org' || i)::uuid, 'Org ' || i, 'owner-' || (i % 5), false, 1 FROM generate_series(1, $1) i""",
                       orgs)
    await conn.execute(f"""
        INSERT INTO {S}.pipeline_deal (id, version, name, owner, partner_id, amount, currency, stage_name, outcome,
                                       created_at, stage_entered_at, ace_review_status, ace_action_due_date)
        SELECT md5('deal' || i)::uuid, 1, 'Deal ' || i, 'owner-' || (i % 5), md5('org' || (1 + i % $2))::uuid,
               (1000 + (i * 7919) % 200000)::numeric, 'USD', 'Qualified', 'open', now(), now(),
               CASE WHEN i % 100 = 0 THEN 'Action Required' END,
               CASE WHEN i % 100 = 0 THEN current_date + (i % 20) END
        FROM generate_series(1, $1) i""", deals, orgs)
    # Stored state as logging would leave it: one touch's worth of energy 0-400 days ago.
    await conn.execute(f"""
        INSERT INTO {S}.contact (id, partner_id, name, email, role, seniority, owner, crucial, version, energy,
                                 last_touch_at, touches, cold_at)
        SELECT md5('c' || i)::uuid, md5('org' || (1 + i % $2))::uuid, 'Contact ' || i, 'c' || i || '@org.example',
               'PDM', 'manager', 'owner-' || (i % 5), i % 20 = 0, 1, 1 + (i % 5),
               now() - ((i % 400) || ' days')::interval, 50, now() - ((i % 400) || ' days')::interval
                   + ((30 * log(2, (1 + (i % 5)) / 1.0700)) || ' days')::interval
        FROM generate_series(1, $1) i""", contacts, orgs)
    await conn.execute(f"""
        INSERT INTO {S}.contact_deal (contact_id, opportunity_id, via)
        SELECT md5('c' || (1 + (i * 37) % $2))::uuid, md5('deal' || i)::uuid, 'deal'
        FROM generate_series(1, $1 / 5) i ON CONFLICT DO NOTHING""", deals, contacts)
    timings["load_orgs_deals_contacts_s"] = time.monotonic() - t
    t = time.monotonic()
    step = 1_000_000
    for start_at in range(1, interactions + 1, step):
        end = min(start_at + step - 1, interactions)
        await conn.execute(f"""
            INSERT INTO {S}.interaction (id, kind, occurred_at, initiated_by, source, created_at)
            SELECT md5('i' || i)::uuid, (ARRAY['meeting','call','email','email','message'])[1 + i % 5],
                   now() - ((i % 730) || ' days')::interval, 'us', 'import', now()
            FROM generate_series($1::int, $2::int) i""", start_at, end)
        await conn.execute(f"""
            INSERT INTO {S}.interaction_contact (interaction_id, contact_id)
            SELECT md5('i' || i)::uuid, md5('c' || (1 + i % $3))::uuid FROM generate_series($1::int, $2::int) i""",
                           start_at, end, contacts)
        log(f"interactions: {end:,} of {interactions:,}")
    timings["load_interactions_s"] = time.monotonic() - t
    await conn.execute("ANALYZE")
    return timings


async def timed(fn: Any, requests: int, warmup: int = 2) -> dict[str, float]:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(requests):
        t = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": round(percentile(samples, 0.5), 1), "p99_ms": round(percentile(samples, 0.99), 1),
            "max_ms": round(max(samples), 1), "requests": requests}


RAW_AGGREGATE = f"""
    SELECT c.partner_id, count(*), avg(100 * (1 - exp(-least(c.energy * power(2, greatest(-1000,
           -extract(epoch FROM now() - c.last_touch_at) / 86400 / 30)) / 3, 700)))),
           sum(coalesce(l.value, 0))
    FROM {S}.contact c
    LEFT JOIN (SELECT cd.contact_id, sum(d.amount) AS value FROM {S}.contact_deal cd
               JOIN {S}.pipeline_deal d ON d.id = cd.opportunity_id AND d.outcome = 'open'
               GROUP BY cd.contact_id) l ON l.contact_id = c.id
    WHERE c.archived_at IS NULL GROUP BY c.partner_id"""


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = ROOT / ".data" / f"bench-{uuid.uuid4().hex[:8]}"
    with servers(data_dir) as srv:
        urls = await platform_database(srv.admin_url, unique("bench_"))
        conn = await asyncpg.connect(plain_dsn(urls["admin"]))
        try:
            timings = await load(conn, args.contacts, args.interactions, args.orgs, args.deals)
            log(f"loaded: {timings}")
            settings = Settings(database_url=urls["relationships"], nats_url=srv.nats_url, log_format="text")
            stop = asyncio.Event()
            service = await start(definition, settings, stop)
            nc = await bus.connect(srv.nats_url, name="bench")
            try:
                owners = tuple(f"owner-{i}" for i in range(5))
                results: dict[str, Any] = {}
                results["raw_sql_aggregate"] = await timed(lambda: conn.fetch(RAW_AGGREGATE), args.requests)
                log(f"raw: {results['raw_sql_aggregate']}")
                results["heatmap"] = await timed(lambda: send(nc, cc.GetHeatmap(), timeout=300), args.requests)
                log(f"heatmap: {results['heatmap']}")
                results["attention_team"] = await timed(
                    lambda: send(nc, cc.GetAttention(members=owners), timeout=300), args.requests)
                log(f"attention: {results['attention_team']}")
                results["attention_one"] = await timed(
                    lambda: send(nc, cc.GetAttention(owner="owner-1"), timeout=300), args.requests)
                results["health"] = await timed(lambda: send(nc, cc.GetRelationshipHealth(), timeout=300),
                                                args.requests)
                log(f"health: {results['health']}")
                ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM {S}.contact ORDER BY id LIMIT 200")]
                at = datetime.now(UTC) - timedelta(hours=1)
                it = iter(ids * 10)
                results["log_interaction"] = await timed(lambda: send(nc, cc.LogInteraction(
                    kind=cc.InteractionKind.call, occurred_at=at, contact_ids=(next(it),))), args.requests * 10)
                results["raw_sql_insert_interaction"] = await timed(lambda: conn.execute(
                    f"WITH i AS (INSERT INTO {S}.interaction (id, kind, occurred_at, initiated_by, source) "
                    f"VALUES (gen_random_uuid(), 'call', now(), 'us', 'manual') RETURNING id) "
                    f"INSERT INTO {S}.interaction_contact SELECT i.id, $1 FROM i", ids[0]), args.requests * 10)
                log(f"log one: {results['log_interaction']} raw {results['raw_sql_insert_interaction']}")
            finally:
                await nc.close()
                stop.set()
                await shutdown(service)
        finally:
            await conn.close()
    for key in ("heatmap", "attention_team", "health"):
        results[f"{key}_over_raw_p50"] = round(results[key]["p50_ms"] / results["raw_sql_aggregate"]["p50_ms"], 1)
    results["log_over_raw_p50"] = round(results["log_interaction"]["p50_ms"]
                                        / results["raw_sql_insert_interaction"]["p50_ms"], 1)
    return {"benchmark": "relationships_read", "at": datetime.now(UTC).isoformat(), "servers": srv.how,
            "load_average_1m": os.getloadavg()[0], "scale": vars(args), "load": timings, "results": results,
            "versions": versions()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--orgs", type=int, default=500)
    parser.add_argument("--deals", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or RESULTS_DIR / f"relationships_read-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    del args.out
    report = asyncio.run(run(args))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
