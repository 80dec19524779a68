"""A deal made in PartnerOps shared to ACE end to end: the worker as a process
(`python -m integrations.aws_partner_central`) against the local HTTP fake of Partner Central (every
request validated with botocore's own input shapes), the pipeline service running, real Postgres and
NATS. AWS creates the opportunity but its answer is lost (held past the client's read timeout):
botocore retries with the same ClientToken, and the platform ends with exactly one ACE opportunity,
associated with the solution, submitted, and linked to the deal — no second deal."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest

from contracts import pipeline as pc
from contracts import sync
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.errors import CommandFailed
from runtime.service import RunningService, shutdown, start
from runtime.testing import eventually, platform_database, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.integrations.fake_partner_central import Fake
from tests.integrations.test_aws_worker_process import spawn
from tests.pipeline.helpers import settings_for, sql
from tests.support.bus import bus_goes_too

SOLUTION = "S-0000042"
READ_TIMEOUT = 1.0


@pytest.fixture(scope="module")
async def share_db(servers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("as_"))


@pytest.fixture(scope="module")
async def pipeline_running(share_db, private_bus: EmbeddedNats) -> AsyncIterator[RunningService]:
    stop = asyncio.Event()
    running = await start(pipeline_definition, settings_for(share_db["pipeline"], private_bus.url_for("pipeline")),
                          stop)
    yield running
    stop.set()
    bus_goes_too(running)
    await shutdown(running)


async def test_a_shared_deal_is_created_once_in_ace_after_a_lost_answer_and_linked_back(
        share_db, private_bus, pipeline_running, tmp_path):
    fake = Fake()

    def after(operation: str, params: dict, nth: int) -> None:
        if operation == "CreateOpportunity" and nth == 1:
            time.sleep(READ_TIMEOUT * 2.5)  # AWS made it; the answer arrives after the client gave up

    fake.after = after
    server, endpoint = fake.serve()
    log = tmp_path / "aws-sync.log"
    worker = spawn(share_db, private_bus, endpoint, log, extra={
        "AWS_PARTNER_CENTRAL_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT),
        "AWS_PARTNER_CENTRAL_SOLUTION_ID": SOLUTION})
    nc = await bus.connect(private_bus.url_for("gateway"), name="gateway-test")
    try:
        deal = await send(nc, pc.CreateOpportunity(
            name="Analytics on AWS", customer="Initech", amount=Decimal("120000.00"), deal_model=pc.DealModel.cosell,
            pipeline=pc.COSELL, stage="qualified", expected_close_date=date(2027, 3, 31), actor="tests"))
        await eventually(lambda: _answers(nc), timeout=60, what="the worker answering commands")
        view = await send(nc, sync.ShareDealToAce(
            deal_id=deal.id, name=deal.name, customer=deal.customer, stage=deal.stage_name, amount=deal.amount,
            currency=deal.currency, expected_close_date=deal.expected_close_date,
            business_problem="Nightly reports take eleven hours on the old warehouse.", actor="manager@tests"))
        assert view.state == "queued" and view.solution_id == SOLUTION

        async def linked() -> dict | None:
            rows = await sql(share_db, "SELECT id, source, external_id, stage, amount, ace, version "
                                       "FROM pipeline.opportunity WHERE name = 'Analytics on AWS'")
            return dict(rows[0]) if len(rows) == 1 and rows[0]["external_id"] else None

        try:
            found = await eventually(linked, timeout=60, what="the deal linked to its ACE opportunity")
            share = await eventually(lambda: _submitted(share_db), timeout=30, what="the share submitted")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nworker log:\n{log.read_text()[-3000:]}\ncalls: "
                                 f"{[op for op, _ in fake.calls]}") from None
    finally:
        await nc.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        server.shutdown()
    assert fake.invalid == [], fake.invalid
    # AWS was asked to create it twice (the retry after the lost answer), with one token: one opportunity.
    creates = [p for op, p in fake.calls if op == "CreateOpportunity"]
    assert len(creates) == 2 and len({p["ClientToken"] for p in creates}) == 1
    assert len(fake.opportunities) == 1
    [(ace_id, ace)] = fake.opportunities.items()
    assert ace["Project"]["ExpectedCustomerSpend"][0]["Amount"] == "10000.00"  # monthly: 120,000 / 12
    assert ace["PartnerOpportunityIdentifier"] == str(deal.id)
    assert ace["RelatedEntityIdentifiers"]["Solutions"] == [SOLUTION]
    assert ace["LifeCycle"]["ReviewStatus"] == "Submitted"
    # The deal itself became the ACE record: same id, no second deal.
    assert found["id"] == deal.id and (found["source"], found["external_id"]) == ("aws", ace_id)
    assert found["stage"] == "qualified" and found["amount"] == Decimal("120000.00")
    assert share["opportunity_id"] == ace_id
    await eventually(lambda: _review(share_db, "Submitted"), timeout=30, what="the submitted version in the pipeline")
    count = await sql(share_db, "SELECT count(*) AS n FROM pipeline.opportunity WHERE external_id = $1 "
                                "OR name = 'Analytics on AWS'", ace_id)
    assert count[0]["n"] == 1


async def _answers(nc) -> bool:
    try:
        await send(nc, sync.GetSyncStatus(), timeout=5)
    except CommandFailed:
        return False
    return True


async def _submitted(db) -> dict | None:
    rows = await sql(db, "SELECT state, opportunity_id, error FROM aws_sync.share")
    return dict(rows[0]) if rows and rows[0]["state"] == "submitted" else None


async def _review(db, status: str) -> bool:
    rows = await sql(db, "SELECT ace->>'review_status' AS review FROM pipeline.opportunity "
                         "WHERE name = 'Analytics on AWS'")
    return bool(rows) and rows[0]["review"] == status
