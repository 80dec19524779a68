"""Past one machine, proven by faults (issue 18): `partnerops up --replicas 2 --nats-nodes 3` runs two
processes of every service and of the gateway on a three-node NATS cluster; external events flow while
a NATS node is SIGKILLed and restarted, a NATS node's data directory is lost and the node rejoins
empty, one replica of each process is SIGKILLed, and every process is
restarted in turn; the end state (opportunities, the gateway's read model and KPI aggregates, the
commission ledger) equals the fault-free one exactly. The driver and checker are bench/chaos.py (the
100k variant runs there); this is its small-N run. Consumers must move again within
bench.chaos.RECOVERY_BOUND (15 s) of each fault: a bound, waited for, not a timing measure; the
measured seconds are printed."""

from __future__ import annotations

import json

import asyncpg
import pytest

from bench.chaos import SERVICES, Platform, scenario
from runtime.db import plain_dsn
from runtime.testing import STARTUP_PATIENCE, eventually_blocking, platform_database, unique

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1500)]
# Small: what this proves is recovery from each fault and an exact end state, which needs events flowing
# through every fault (the load goes on until the last one is done, past EVENTS if need be) and some load
# between faults (EVENTS // 10 events: 2.5 s at RATE), not volume; bench/chaos.py runs the large variant.
RATE = 16.0
EVENTS = 400
OPPORTUNITIES = 40


@pytest.fixture(scope="module")
async def platform(servers, tmp_path_factory):
    # A copy of the run's migrated template: `up` finds every migration applied.
    admin = (await platform_database(servers.admin_url, unique("chaos_")))["admin"]
    p = Platform(admin, tmp_path_factory.mktemp("chaos"))
    p.start()
    try:
        eventually_blocking(p.ready, "the platform ready", timeout=STARTUP_PATIENCE)
        yield p
    finally:
        p.stop()


async def test_two_replicas_of_every_process_with_one_relay_leader_per_service(platform: Platform):
    assert platform.full(), platform.children()
    assert len(platform.nats_url.split(",")) == 3
    conn = await asyncpg.connect(plain_dsn(platform.admin_url))
    try:
        for service in SERVICES:
            # The relays' leader election (runtime/outbox.py): a session advisory lock per service.
            leaders = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint", f"outbox-relay:{service}")
            assert leaders == 1, service
            sessions = await conn.fetchval("SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE usename = $1",
                                           service)
            assert sessions >= 2, f"{service}: both replicas connected"
    finally:
        await conn.close()


async def test_the_end_state_through_node_replica_and_rolling_faults_equals_a_fault_free_run(platform: Platform):
    run, problems = await scenario(platform, plain_dsn(platform.admin_url), rate=RATE, total=EVENTS,
                                   opportunities=OPPORTUNITIES)
    report = run.report()
    print(json.dumps({"published": run.workload.published, "publish_retries": run.publish_errors,
                      "windows": report}, indent=2))
    assert problems == {"lost": [], "unexpected": []}
    assert run.workload.published >= EVENTS
    for name in ("nats-node", "disk-lost", "replicas", "rolling"):
        assert report[name]["recovery_seconds"] is not None
