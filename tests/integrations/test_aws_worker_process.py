"""The AWS worker as a process of its own (`python -m integrations.aws_partner_central`, as `partnerops
up` runs it) against a local HTTP fake of Partner Central (boto3 pointed at it with endpoint_url,
every request checked against botocore's model): pagination, a throttled page (429) and a server error
mid-page (500) that botocore retries, an opportunity changed twice during a page, and the worker
SIGKILLed in the middle of a page and started again. The platform ends with each opportunity exactly
once, at its newest version, and no version published twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from runtime.embedded import EmbeddedNats
from runtime.service import RunningService, shutdown, start
from runtime.testing import TEST_SECRET, platform_database, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.integrations.ace import opportunity
from tests.integrations.fake_partner_central import Fake, now
from tests.pipeline.helpers import eventually, settings_for, sql
from tests.support.bus import bus_goes_too

ROOT = Path(__file__).resolve().parents[2]
COUNT = 23
PAGE = 5


@pytest.fixture(scope="module")
async def process_db(servers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("ap_"))


@pytest.fixture(scope="module")
async def pipeline_running(process_db, private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(pipeline_definition, settings_for(process_db["pipeline"], private_bus.url_for("pipeline")),
                          stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


def spawn(db: dict[str, str], bus: EmbeddedNats, endpoint: str, log: Path,
          extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DB_PASSWORD_", "NATS_PASSWORD_"))}
    env.update({
        "PYTHONPATH": str(ROOT), "ENVIRONMENT": "test", "SECRET_KEY": TEST_SECRET, "LOG_FORMAT": "text",
        "SERVICE_NAME": "aws-sync", "DATABASE_URL": db["aws_sync"], "NATS_URL": bus.url_for("aws-sync"),
        "OUTBOX_POLL_SECONDS": "0.2",
        "AWS_PARTNER_CENTRAL_CATALOG": "Sandbox", "AWS_PARTNER_CENTRAL_ENDPOINT_URL": endpoint,
        "AWS_PARTNER_CENTRAL_PAGE_SIZE": str(PAGE), "AWS_PARTNER_CENTRAL_OVERLAP_SECONDS": "1",
        "AWS_PARTNER_CENTRAL_RETRY_MODE": "standard", "AWS_PARTNER_CENTRAL_MAX_ATTEMPTS": "5",
        "AWS_PARTNER_CENTRAL_POLL_SECONDS": "0.2",
        "AWS_ACCESS_KEY_ID": "AKIDFAKEFORTESTS", "AWS_SECRET_ACCESS_KEY": "fake-secret-for-tests",
        **(extra or {}),
    })
    return subprocess.Popen([sys.executable, "-m", "integrations.aws_partner_central"], cwd=ROOT, env=env,
                            stdout=log.open("a"), stderr=subprocess.STDOUT)


async def test_killed_mid_page_and_restarted_nothing_lost_nothing_doubled(process_db, private_bus, pipeline_running,
                                                                         tmp_path):
    t0 = now() - timedelta(hours=3)
    fake = Fake()
    for i in range(COUNT):
        opp = opportunity(modified=t0 + timedelta(minutes=i), stage="Qualified", monthly=f"{100 + i}.00")
        fake.opportunities[opp["Id"]] = opp
    ids = list(fake.opportunities)
    changing = ids[3]
    reached, release = threading.Event(), threading.Event()

    def before(operation: str, params: dict, nth: int) -> None:
        if operation == "GetOpportunity" and nth in (2, 3):
            # Changed twice while its page is being read: GetOpportunity answers the newest.
            with fake.lock:
                fake.opportunities[changing] = {**fake.opportunities[changing], "LastModifiedDate": now(),
                                                "LifeCycle": {"Stage": "Committed" if nth == 3 else "Qualified"}}
        if operation == "GetOpportunity" and nth == 12:
            reached.set()
            release.wait(60)

    fake.before = before
    fake.faults = {("ListOpportunities", 2): 429, ("GetOpportunity", 7): 500}
    server, endpoint = fake.serve()
    log = tmp_path / "aws-sync.log"
    worker = spawn(process_db, private_bus, endpoint, log)
    try:
        assert await asyncio.to_thread(reached.wait, 90), "the worker never got to the 12th record: " + log.read_text()
        worker.send_signal(signal.SIGKILL)  # in the middle of a page, a GetOpportunity unanswered
        worker.wait(10)
        release.set()
        done_before = await sql(process_db, "SELECT count(*) AS n FROM aws_sync.synced_opportunity")
        assert 0 < done_before[0]["n"] < COUNT
        worker = spawn(process_db, private_bus, endpoint, log)

        async def all_in() -> bool:
            rows = await sql(process_db, "SELECT external_id, source_modified_at FROM pipeline.opportunity "
                                         "WHERE source = 'aws' AND external_id = ANY($1)", ids)
            with fake.lock:
                newest = {i: o["LastModifiedDate"] for i, o in fake.opportunities.items()}
            return len(rows) == COUNT and all(r["source_modified_at"] == newest[r["external_id"]] for r in rows)

        try:
            await eventually(all_in, timeout=120, what="every opportunity in the pipeline at its newest version")
        except AssertionError as exc:
            rows = await sql(process_db, "SELECT external_id, source_modified_at FROM pipeline.opportunity "
                                         "WHERE external_id = ANY($1)", ids)
            have = {r["external_id"]: r["source_modified_at"] for r in rows}
            with fake.lock:
                off = {i: (have.get(i), o["LastModifiedDate"]) for i, o in fake.opportunities.items()
                       if have.get(i) != o["LastModifiedDate"]}
            letters = await sql(process_db, "SELECT count(*) AS n FROM aws_sync.outbox WHERE sent_at IS NULL")
            from runtime import bus as rbus
            from runtime import deadletter
            nc = await rbus.connect(private_bus.url, name="peek")
            dead = [(d.subject, d.reason[:200]) for d in await deadletter.list_all(nc.jetstream())]
            await nc.close()
            outbox_of = await sql(process_db, "SELECT aggregate, sent_at FROM aws_sync.outbox "
                                              "WHERE aggregate = ANY($1)", [f"external:aws:{i}" for i in off])
            off = {**off, "dead": dead, "outbox": [dict(r) for r in outbox_of]}
            raise AssertionError(f"{exc}\nnot in the pipeline as in AWS: {off}\nunsent: {letters[0]['n']}\n"
                                 f"worker log:\n{log.read_text()[-2000:]}") from None
    finally:
        release.set()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.shutdown()
    assert fake.invalid == [], fake.invalid
    # Each opportunity exactly once, at its newest version; the changing one in its last stage.
    rows = await sql(process_db, "SELECT external_id, count(*) AS n, max(stage) AS stage FROM pipeline.opportunity "
                                 "WHERE external_id = ANY($1) GROUP BY external_id", ids)
    assert len(rows) == COUNT and {r["n"] for r in rows} == {1}
    assert {r["external_id"]: r["stage"] for r in rows}[changing] == "committed"
    # No version published twice: one outbox row per (opportunity, last-modified) read.
    versions = await sql(process_db, "SELECT aggregate, payload::jsonb->>'last_modified' AS lm, count(*) AS n "
                                     "FROM aws_sync.outbox WHERE aggregate LIKE 'external:%' GROUP BY 1, 2")
    assert {v["n"] for v in versions} == {1}
    # botocore retried the throttled page and the 500 itself; the model accepted every request sent.
    assert fake.count("ListOpportunities") >= 2 and fake.count("GetOpportunity") >= COUNT
