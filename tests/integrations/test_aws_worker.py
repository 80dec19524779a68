"""The whole AWS worker as it runs: its service shell, the tick consumer, the refresh and status
commands (sent with the gateway's login, as in production) and the driver, against the real Postgres
and NATS, the pipeline service, and AWS played by botocore's Stubber. A NATS and a database of their own: the worker
syncs the `Sandbox` catalog, whose cursor must start empty, and its durables and queue groups are fixed names."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from contracts import schedules, sync
from contracts.base import ErrorKind
from integrations.aws_partner_central.client import PartnerCentral
from integrations.aws_partner_central.driver import driver
from integrations.aws_partner_central.handlers import definition
from integrations.aws_partner_central.settings import get_aws_settings
from runtime import bus
from runtime.commands import send
from runtime.embedded import EmbeddedNats
from runtime.errors import CommandFailed
from runtime.service import RunningService, shutdown, start
from runtime.testing import platform_database, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.integrations.ace import opportunity
from tests.integrations.conftest import CATALOG, aws_settings, stubbed
from tests.integrations.test_aws_inbound import SORT, detail, landed
from tests.pipeline.conftest import settings_for
from tests.pipeline.helpers import eventually, sql

pytestmark = pytest.mark.usefixtures("catalog_env")


@pytest.fixture(scope="module")
def catalog_env() -> AsyncIterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_PARTNER_CENTRAL_CATALOG", CATALOG)
    get_aws_settings.cache_clear()
    yield
    mp.undo()
    get_aws_settings.cache_clear()


@pytest.fixture(scope="module")
async def worker_db(servers) -> dict[str, str]:
    return await platform_database(servers.admin_url, unique("aw_"))


@pytest.fixture(scope="module")
def aws() -> tuple[PartnerCentral, Stubber]:
    return stubbed(CATALOG)


@pytest.fixture(scope="module")
async def worker(worker_db, private_bus: EmbeddedNats, aws, catalog_env) -> AsyncIterator[RunningService]:
    client, stubber = aws
    # The first start pulls at once: AWS has nothing yet.
    stubber.add_response("list_opportunities", {"OpportunitySummaries": []},
                         {"Catalog": CATALOG, "MaxResults": 2, "Sort": SORT})
    stop = asyncio.Event()
    pipeline_settings = settings_for(worker_db["pipeline"], private_bus.url_for("pipeline"))
    pipeline = await start(pipeline_definition, pipeline_settings, stop)
    worker_definition = dataclasses.replace(definition, workers=(driver(client, aws_settings()),))
    running = await start(worker_definition, settings_for(worker_db["aws_sync"], private_bus.url_for("aws-sync")), stop)
    await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="the first pull")
    yield running
    stop.set()
    await shutdown(running)
    await shutdown(pipeline)


@pytest.fixture
async def gateway_nc(private_bus: EmbeddedNats) -> AsyncIterator:
    nc = await bus.connect(private_bus.url_for("gateway"), name="gateway-test")
    yield nc
    await nc.close()


async def pending(db) -> list:
    return await sql(db, "SELECT kind, key, attempts, not_before > now() AS waiting FROM aws_sync.sync_request")


class TestWorker:
    async def test_an_eventbridge_refresh_brings_one_opportunity_in(self, worker, worker_db, aws, gateway_nc):
        _, stubber = aws
        opp = opportunity(stage="Committed", review="Submitted")
        detail(stubber, CATALOG, opp)
        queued = await send(gateway_nc, sync.RefreshAceOpportunity(catalog=CATALOG, opportunity_id=opp["Id"]))
        assert queued.opportunity_id == opp["Id"]
        found = await landed(worker_db, [opp])
        assert found[opp["Id"]]["stage"] == "committed"
        await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="the calls made")
        assert await eventually(lambda: _no_requests(worker_db), what="the request done")

    async def test_a_refresh_for_the_other_catalog_is_refused(self, worker, gateway_nc):
        with pytest.raises(CommandFailed) as failed:
            await send(gateway_nc, sync.RefreshAceOpportunity(catalog="AWS", opportunity_id="O42"))
        assert failed.value.error.kind is ErrorKind.invalid and failed.value.error.field == "catalog"

    async def test_a_malformed_refresh_is_refused_before_anything_is_queued(self, worker, worker_db, gateway_nc):
        for body in ({"catalog": CATALOG, "opportunity_id": "O1; DROP TABLE"}, {"catalog": CATALOG},
                     {"catalog": CATALOG, "opportunity_id": "O" + "9" * 40}, [1, 2], "x" * 10):
            reply = await gateway_nc.request(sync.RefreshAceOpportunity.subject, json.dumps(body).encode(), timeout=10)
            answer = json.loads(reply.data)
            assert answer["ok"] is False and answer["error"]["kind"] == "invalid", body
        assert await pending(worker_db) == []

    async def test_a_tick_of_the_schedule_runs_a_pass(self, worker, worker_db, aws, private_bus):
        _, stubber = aws
        t0 = datetime.now(UTC) - timedelta(minutes=30)
        opp = opportunity(modified=t0, stage="Technical Validation")
        stubber.add_response("list_opportunities", {"OpportunitySummaries": [
            {"Catalog": CATALOG, "Id": opp["Id"], "LastModifiedDate": opp["LastModifiedDate"]}]}, None)
        detail(stubber, CATALOG, opp)
        operator = await bus.connect(private_bus.url, name="the-server-firing")
        try:
            # What the server publishes from the plan at a firing (the plan's body, no event id).
            plan = next(p for p in schedules.PLANS if p.tick is schedules.AwsReconciliationDueV1)
            await operator.jetstream().publish(plan.tick.subject, plan.body())
        finally:
            await operator.close()
        await landed(worker_db, [opp])
        runs = await eventually(lambda: sql(worker_db, "SELECT kind, ok, published FROM aws_sync.sync_run "
                                                       "WHERE kind = 'reconcile' AND ok"), what="the run recorded")
        assert [(r["kind"], r["published"]) for r in runs] == [("reconcile", 1)]

    async def test_a_refresh_aws_throttles_waits_and_the_status_shows_it(self, worker, worker_db, aws, gateway_nc):
        _, stubber = aws
        stubber.add_client_error("get_opportunity", "ThrottlingException", "Rate exceeded", 429)
        await send(gateway_nc, sync.RefreshAceOpportunity(catalog=CATALOG, opportunity_id="O777"))
        waiting = await eventually(lambda: _waiting(worker_db), what="the refresh put off")
        assert waiting[0]["attempts"] == 1
        status = await send(gateway_nc, sync.GetSyncStatus())
        assert status.catalog == CATALOG and status.pending_refreshes == 1
        assert status.last_success_at is not None and status.lag_seconds is not None
        assert "cron" in status.schedule and status.last_reconciliation_due_at is not None
        assert any(r.kind == "reconcile" and r.ok for r in status.runs)
        await sql(worker_db, "DELETE FROM aws_sync.sync_request WHERE key = 'O777'")


async def _no_requests(db) -> bool:
    return not await sql(db, "SELECT 1 FROM aws_sync.sync_request")


async def _waiting(db) -> list:
    return [r for r in await pending(db) if r["key"] == "O777" and r["waiting"]]
