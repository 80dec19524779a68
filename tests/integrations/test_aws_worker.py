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
from uuid import uuid4

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
from runtime.testing import eventually, platform_database, unique
from services.pipeline.handlers import definition as pipeline_definition
from tests.integrations.ace import opportunity
from tests.integrations.conftest import CATALOG, aws_settings, stubbed
from tests.integrations.test_aws_inbound import SORT, detail, landed
from tests.pipeline.helpers import settings_for, sql
from tests.support.bus import bus_goes_too

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
    bus_goes_too(running, pipeline)
    await asyncio.gather(shutdown(running), shutdown(pipeline))  # side by side


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


# ------------------------------------------------------------------------------ the gateway's side


@pytest.fixture(scope="module")
async def edge(worker, worker_db, private_bus: EmbeddedNats) -> AsyncIterator:
    """The gateway on the worker's bus, with a token of the sync worker's kind (events:publish) and one
    that may only read the syncs' health, and a signed-in viewer."""
    from gateway.app import create_app
    from gateway.auth import Role, digest, new_api_token
    from gateway.models import ApiToken
    from gateway.users import ensure_user
    from runtime.settings import Settings
    from runtime.testing import TEST_SECRET
    from tests.support.gateway import PASSWORD, Gateway

    settings = Settings(environment="test", secret_key=TEST_SECRET, database_url=worker_db["gateway"],
                        nats_url=private_bus.url_for("gateway"), outbox_poll_seconds=0.2)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        tokens = {}
        async with app.state.running.sessions() as session, session.begin():
            for name, scopes in (("eventbridge", ["events:publish"]), ("reader", ["sync:read"]),
                                 ("decider", ["opportunities:write"])):
                tokens[name] = new_api_token()
                session.add(ApiToken(name=f"{name}-{unique('')}", token_hash=digest(tokens[name]), scopes=scopes,
                                     created_by="tests"))
        g = Gateway(app=app, settings=settings)
        await ensure_user(settings, email="viewer@sync.test", name="Vi Ewer", role=Role.viewer, password=PASSWORD)
        viewer, _ = await g.sign_in("viewer@sync.test")
        await ensure_user(settings, email="manager@sync.test", name="Man Ager", role=Role.manager, password=PASSWORD)
        manager, csrf = await g.sign_in("manager@sync.test")
        g.people[Role.manager] = (manager, csrf)  # type: ignore[assignment]
        yield g, tokens, viewer
        await viewer.aclose()
        await manager.aclose()


def eventbridge(opportunity_id: str = "O123", *, detail_type: str = "Opportunity Updated", catalog: str = CATALOG,
                **extra) -> dict:
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail_type,
            "source": "aws.partnercentral-selling", "account": "123456789012", "time": "2026-11-30T12:00:00Z",
            "region": "us-east-1", "resources": [],
            "detail": {"schemaVersion": "1", "catalog": catalog, "opportunity": {"identifier": opportunity_id}},
            **extra}


async def post_event(edge, body, token: str = "eventbridge"):
    g, tokens, _ = edge
    async with g.client() as client:
        return await client.post("/api/integrations/aws/events", json=body,
                                 headers={"authorization": f"Bearer {tokens[token]}"})


class TestEventBridge:
    async def test_an_opportunity_event_refreshes_that_opportunity(self, edge, worker_db, aws):
        _, stubber = aws
        opp = opportunity(stage="Business Validation")
        detail(stubber, CATALOG, opp)
        response = await post_event(edge, eventbridge(opp["Id"]))
        assert response.status_code == 202, response.text
        assert response.json() == {"action": "refresh_queued", "opportunity_id": opp["Id"],
                                   "detail": "the worker reads it from AWS and publishes it if it changed"}
        found = await landed(worker_db, [opp])
        assert found[opp["Id"]]["stage"] == "business_validation"

    async def test_other_detail_types_are_accepted_and_left_to_the_next_pass(self, edge, worker_db):
        response = await post_event(edge, eventbridge(detail_type="Engagement Member Joined"))
        assert response.status_code == 202 and response.json()["action"] == "ignored"
        assert await pending(worker_db) == []

    @pytest.mark.parametrize("body", [
        eventbridge(source="aws.evil"),
        eventbridge(catalog="Prod"),
        eventbridge("O1; DROP TABLE"),
        eventbridge("../O1"),
        eventbridge("O" + "1" * 20),
        eventbridge("o123"),
        eventbridge("O12\u0000"),
        eventbridge(detail_type="Opportunity Deleted"),
        eventbridge(detail={"catalog": CATALOG}),
        eventbridge(detail={"catalog": CATALOG, "opportunity": {"identifier": 123}}),
        eventbridge(detail={"catalog": CATALOG, "opportunity": [{"identifier": "O1"}]}),
        {"detail-type": "Opportunity Updated"},
        eventbridge(time="1e10"),
        eventbridge(time="9999-12-31T00:00:00Z"),
        eventbridge(detail={"catalog": CATALOG, "opportunity": {"identifier": "O1", "nested": [[[[[[[[[[[]]]]]]]]]]]}},
                    id="x" * 101),
        [eventbridge()],
        "Opportunity Updated",
    ], ids=lambda b: str(b)[:40])
    async def test_a_malformed_or_hostile_event_is_refused_and_refreshes_nothing(self, edge, worker_db, body):
        response = await post_event(edge, body)
        assert response.status_code == 422, response.text
        assert await pending(worker_db) == []

    async def test_an_event_of_the_catalog_the_worker_does_not_sync_is_refused_by_the_worker(self, edge, worker_db):
        response = await post_event(edge, eventbridge(catalog="AWS"))
        assert response.status_code == 422 and "Sandbox catalog" in response.text
        assert await pending(worker_db) == []

    async def test_only_a_token_with_the_publish_scope_may_send_events(self, edge, worker_db):
        assert (await post_event(edge, eventbridge(), token="reader")).status_code == 403
        g, _, _ = edge
        async with g.client() as anonymous:
            assert (await anonymous.post("/api/integrations/aws/events", json=eventbridge())).status_code == 401
        assert await pending(worker_db) == []


class TestSyncHealth:
    async def test_the_api_shows_the_aws_sync(self, edge):
        g, tokens, _ = edge
        async with g.client() as client:
            response = await client.get("/api/sync", headers={"authorization": f"Bearer {tokens['reader']}"})
        assert response.status_code == 200, response.text
        [aws_sync] = response.json()
        assert aws_sync["source"] == "aws" and aws_sync["state"] in ("ok", "failing")
        assert aws_sync["status"]["catalog"] == CATALOG and aws_sync["status"]["runs"]

    async def test_the_page_shows_runs_and_problems(self, edge, worker_db):
        await sql(worker_db, "INSERT INTO aws_sync.sync_problem (catalog, opportunity_id, reason) VALUES "
                             "($1, 'O999', 'title: must not contain a NUL character')", CATALOG)
        _, _, viewer = edge
        page = await viewer.get("/sync", headers={"accept": "text/html"})
        assert page.status_code == 200
        assert 'data-testid="sync-aws"' in page.text and "O999" in page.text and "NUL character" in page.text
        assert "Syncs" in page.text and 'data-testid="sync-runs"' in page.text

    async def test_a_worker_that_does_not_answer_is_shown_as_not_running(self, edge, worker_db, tmp_path):
        from gateway.app import create_app
        from runtime.testing import prepare_streams
        from tests.support.gateway import Gateway

        g, tokens, _ = edge
        # The same gateway database on a bus where no AWS worker runs (not configured, or down).
        lonely = EmbeddedNats(store_dir=tmp_path / "nats").start()
        try:
            prepare_streams(lonely.url)
            settings = g.settings.model_copy(update={"nats_url": lonely.url_for("gateway")})
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                other = Gateway(app=app, settings=settings)
                viewer, _ = await other.sign_in("viewer@sync.test")
                page = await viewer.get("/sync", headers={"accept": "text/html"})
                await viewer.aclose()
                async with other.client() as client:
                    api = await client.get("/api/sync", headers={"authorization": f"Bearer {tokens['reader']}"})
        finally:
            lonely.stop()
        assert page.status_code == 200 and "not running" in page.text and "AWS_PARTNER_CENTRAL_SYNC" in page.text
        assert api.status_code == 200 and api.json()[0]["state"] == "not running" and api.json()[0]["status"] is None


class TestAssessment:
    def test_a_sync_is_ok_stale_failing_or_never_run(self):
        from gateway.routes.sync import STALE_AFTER, assess

        now = datetime.now(UTC)

        def status(last_success, *runs):
            return sync.SyncStatus(source="aws", catalog=CATALOG, watermark=None, last_success_at=last_success,
                                   lag_seconds=None, published_24h=0, sent_24h=0, queued_edits=0, pending_refreshes=0,
                                   last_reconciliation_due_at=None, schedule="", problems=[], runs=list(runs))

        def run(kind, ok, error=None):
            return sync.SyncRunView(kind=kind, started_at=now, finished_at=now, ok=ok, seen=0, published=0,
                                    unchanged=0, failed=0, error=error)

        assert assess(status(None), now)[0] == "never run"
        assert assess(status(now, run("incremental", True)), now) == ("ok", None)
        assert assess(status(now - STALE_AFTER - timedelta(minutes=1)), now)[0] == "stale"
        # A failed refresh of one record does not make the sync failing; a failed pass does.
        assert assess(status(now, run("refresh", False, "x"), run("incremental", True)), now)[0] == "ok"
        assert assess(status(now, run("reconcile", False, "ThrottlingException")), now) == (
            "failing", "ThrottlingException")


# ------------------------------------------------------------------------------------- outbound


async def edit_row(db, ident: str) -> dict | None:
    rows = await sql(db, "SELECT status, reason, fields, sent_at FROM aws_sync.outbound_edit WHERE opportunity_id = $1",
                     ident)
    return dict(rows[0]) if rows else None


async def deal_of(db, ident: str) -> dict | None:
    rows = await sql(db, "SELECT id, stage, source_modified_at FROM pipeline.opportunity WHERE external_id = $1", ident)
    return dict(rows[0]) if rows else None


class TestOutbound:
    async def test_an_edit_waits_while_ace_reviews_and_goes_out_when_the_review_ends(self, worker, worker_db, aws,
                                                                                       gateway_nc):
        from botocore.stub import ANY

        from contracts import pipeline as pc

        _, stubber = aws
        t0 = datetime.now(UTC) - timedelta(hours=2)
        reviewing = opportunity(modified=t0, stage="Qualified", review="In review")
        detail(stubber, CATALOG, reviewing)
        await send(gateway_nc, sync.RefreshAceOpportunity(catalog=CATALOG, opportunity_id=reviewing["Id"]))
        await landed(worker_db, [reviewing])
        deal = await deal_of(worker_db, reviewing["Id"])

        # Someone moves the deal in PartnerOps while AWS reviews it: the worker reads the record, finds it
        # locked and sends nothing (an UpdateOpportunity call here would find no stubbed answer).
        stubber.add_response("get_opportunity", {**reviewing, "Catalog": CATALOG},
                             {"Catalog": CATALOG, "Identifier": reviewing["Id"]})
        await send(gateway_nc, pc.MoveOpportunity(opportunity_id=deal["id"], stage="committed"))
        held = await eventually(lambda: _with_status(worker_db, reviewing["Id"], "held"), what="the edit held")
        assert "In review" in held["reason"] and json.loads(held["fields"]) == {"stage": "committed"}
        status = await send(gateway_nc, sync.GetSyncStatus())
        assert status.queued_edits == 1 and status.edits[0].status == "held"

        # AWS approves it (a new version, its fields as before): the edit goes out, with the stage only
        # changed and nothing read-only sent back, against the LastModifiedDate just read.
        approved = {**reviewing, "LastModifiedDate": t0 + timedelta(minutes=30),
                    "LifeCycle": {"Stage": "Qualified", "ReviewStatus": "Approved"}}
        detail(stubber, CATALOG, approved)  # the refresh an EventBridge event asks for
        stubber.add_response("get_opportunity", {**approved, "Catalog": CATALOG},
                             {"Catalog": CATALOG, "Identifier": reviewing["Id"]})
        stubber.add_response(
            "update_opportunity", {"Id": reviewing["Id"], "LastModifiedDate": datetime.now(UTC)},
            {"Catalog": CATALOG, "Identifier": reviewing["Id"], "LastModifiedDate": approved["LastModifiedDate"],
             "Customer": ANY, "Project": ANY, "LifeCycle": {"Stage": "Committed"}})
        committed = {**approved, "LastModifiedDate": datetime.now(UTC) - timedelta(seconds=1),
                     "LifeCycle": {"Stage": "Committed", "ReviewStatus": "Approved"}}
        detail(stubber, CATALOG, committed)  # the refresh after the send
        await send(gateway_nc, sync.RefreshAceOpportunity(catalog=CATALOG, opportunity_id=reviewing["Id"]))
        sent = await eventually(lambda: _with_status(worker_db, reviewing["Id"], "sent"), what="the edit sent")
        assert sent["sent_at"] is not None
        final = await eventually(lambda: _caught_up(worker_db, committed), what="ACE's new version in the pipeline")
        assert final["stage"] == "committed"
        await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="every stubbed call made")
        status = await send(gateway_nc, sync.GetSyncStatus())
        assert status.queued_edits == 0 and status.sent_24h >= 1


async def _with_status(db, ident: str, status: str) -> dict | None:
    row = await edit_row(db, ident)
    return row if row and row["status"] == status else None


async def _caught_up(db, opp: dict) -> dict | None:
    row = await deal_of(db, opp["Id"])
    return row if row and row["source_modified_at"] == opp["LastModifiedDate"] else None


# ---------------------------------------------------------------------------------- invitations


def invitation_summary(ident: str, *, status: str = "PENDING", title: str = "Data lake for Initech") -> dict:
    now = datetime.now(UTC)
    return {"Catalog": CATALOG, "Id": ident, "PayloadType": "OpportunityInvitation", "EngagementTitle": title,
            "Status": status, "InvitationDate": now - timedelta(days=1), "ExpirationDate": now + timedelta(days=14),
            "SenderCompanyName": "Amazon Web Services", "ParticipantType": "RECEIVER"}


LIST_INVITATIONS = {"Catalog": CATALOG, "ParticipantType": "RECEIVER", "PayloadType": ["OpportunityInvitation"],
                    "MaxResults": 2, "Sort": {"SortBy": "InvitationDate", "SortOrder": "DESCENDING"}}


async def invitation_row(db, ident: str) -> dict | None:
    rows = await sql(db, "SELECT * FROM aws_sync.invitation WHERE invitation_id = $1", ident)
    return dict(rows[0]) if rows else None


class TestInvitations:
    async def test_an_invitation_event_brings_the_invitations_in_and_a_manager_accepts_one(
            self, edge, worker_db, aws):
        from gateway.auth import Role

        _, stubber = aws
        accept_id, reject_id = "engi-" + unique("")[:13].ljust(13, "0"), "engi-" + unique("")[:13].ljust(13, "1")
        stubber.add_response("list_engagement_invitations", {"EngagementInvitationSummaries": [
            invitation_summary(accept_id), invitation_summary(reject_id, title="Bad\x00title"),
            {**invitation_summary("engi-0000000000000"), "Status": "PENDING", "Id": "arn:aws:evil"}]},
            LIST_INVITATIONS)
        response = await post_event(edge, eventbridge(detail_type="Engagement Invitation Created"))
        assert response.status_code == 202 and response.json()["action"] == "invitations_queued"
        row = await eventually(lambda: invitation_row(worker_db, reject_id), what="the invitations read")
        assert row["status"] == "PENDING" and row["title"] == "Bad title"  # control characters never stored
        assert await sql(worker_db, "SELECT 1 FROM aws_sync.sync_problem WHERE opportunity_id LIKE 'arn:aws:evil%'")

        g, tokens, viewer = edge
        page = await viewer.get("/sync", headers={"accept": "text/html"})
        assert f'data-testid="invitation-{accept_id}"' in page.text and "a manager answers it" in page.text

        # A manager's token accepts it: AWS is asked to start the engagement (idempotent by its token),
        # and a pass is asked for so the opportunity it makes comes in.
        stubber.add_response("start_engagement_by_accepting_invitation_task",
                             {"TaskId": "task-1", "OpportunityId": "O424242", "TaskStatus": "COMPLETE"},
                             {"Catalog": CATALOG, "Identifier": accept_id, "ClientToken": f"partnerops-{accept_id}"})
        stubber.add_response("list_opportunities", {"OpportunitySummaries": []}, None)
        async with g.client() as client:
            answer = await client.post(f"/api/integrations/aws/invitations/{accept_id}/decision",
                                       json={"decision": "accept"},
                                       headers={"authorization": f"Bearer {tokens['decider']}"})
        assert answer.status_code == 202, answer.text
        assert answer.json()["decision"] == "accept" and answer.json()["decided_by"].startswith("token:")
        sent = await eventually(lambda: _decision(worker_db, accept_id, "sent"), what="the acceptance sent")
        assert sent["opportunity_id"] == "O424242" and sent["status"] == "ACCEPTED"
        await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="the pass after accepting")
        audit = await sql(worker_db, "SELECT actor, action FROM gateway.audit_log WHERE entity_id = $1", accept_id)
        assert [(a["action"]) for a in audit] == ["invitation.accept"]

        # A manager in the browser rejects the other with a reason; AWS gets the reason.
        stubber.add_response("reject_engagement_invitation", {},
                             {"Catalog": CATALOG, "Identifier": reject_id, "RejectionReason": "Not our market"})
        manager, csrf = g.people[Role.manager]  # type: ignore[misc]
        form = await manager.post(f"/sync/invitations/{reject_id}", headers={"accept": "text/html"},
                                  data={"decision": "reject", "reason": "Not our market", "csrf_token": csrf})
        assert form.status_code == 303, form.text
        await eventually(lambda: _decision(worker_db, reject_id, "sent"), what="the rejection sent")

        # Answered already: refused, nothing sent again.
        async with g.client() as client:
            again = await client.post(f"/api/integrations/aws/invitations/{accept_id}/decision",
                                      json={"decision": "reject"},
                                      headers={"authorization": f"Bearer {tokens['decider']}"})
            missing = await client.post("/api/integrations/aws/invitations/engi-zzzzzzzzzzzzz/decision",
                                        json={"decision": "accept"},
                                        headers={"authorization": f"Bearer {tokens['decider']}"})
            hostile = await client.post("/api/integrations/aws/invitations/engi-0000000000000/decision",
                                        json={"decision": "reject", "reason": "x" * 81},
                                        headers={"authorization": f"Bearer {tokens['decider']}"})
            viewer_try = await viewer.post(f"/api/integrations/aws/invitations/{reject_id}/decision",
                                           json={"decision": "accept"})
        assert again.status_code == 409 and missing.status_code == 404 and hostile.status_code == 422
        assert viewer_try.status_code == 403
        assert await _decision(worker_db, accept_id, "sent")


async def _decision(db, ident: str, state: str) -> dict | None:
    row = await invitation_row(db, ident)
    return row if row and row["decision_state"] == state else None


# -------------------------------------------------------------------------------------- sharing


async def new_deal(nc, *, pipeline: str = "cosell", name: str | None = None):
    from decimal import Decimal

    from contracts import pipeline as pc

    return await send(nc, pc.CreateOpportunity(
        name=name or f"Lakehouse {unique('')[:6]}", customer="Initech", amount=Decimal("60000.00"),
        deal_model=pc.DealModel.cosell if pipeline == "cosell" else pc.DealModel.resale, pipeline=pipeline,
        stage="technical_validation" if pipeline == "cosell" else None, actor="tests"))


async def share_row(db, deal_id) -> dict | None:
    rows = await sql(db, "SELECT * FROM aws_sync.share WHERE deal_id = $1", deal_id)
    return dict(rows[0]) if rows else None


async def share_api(edge, deal_id, body: dict, token: str = "decider"):
    g, tokens, _ = edge
    async with g.client() as client:
        return await client.post(f"/api/opportunities/{deal_id}/share/aws", json=body,
                                 headers={"authorization": f"Bearer {tokens[token]}"})


class TestSharing:
    async def test_a_manager_shares_a_cosell_deal_and_it_comes_back_linked(self, edge, worker_db, aws, gateway_nc):
        _, stubber = aws
        deal = await new_deal(gateway_nc)
        token, ace_id = f"partnerops-{deal.id}", "O" + unique("")[:9].translate(str.maketrans("abcdef", "123456"))
        # Every call checked against the model by the Stubber, and its parameters exactly as expected.
        stubber.add_response("create_opportunity", {"Id": ace_id, "LastModifiedDate": datetime.now(UTC)}, {
            "Catalog": CATALOG, "ClientToken": token, "Origin": "Partner Referral",
            "OpportunityType": "Net New Business", "PartnerOpportunityIdentifier": str(deal.id),
            "Customer": {"Account": {"CompanyName": "Initech", "WebsiteUrl": "https://initech.example",
                                     "Address": {"CountryCode": "DE"}}},
            "Project": {"Title": deal.name, "CustomerBusinessProblem": "Reports take eleven hours every night.",
                        "ExpectedCustomerSpend": [{"Amount": "5000.00", "CurrencyCode": "USD",
                                                   "Frequency": "Monthly", "TargetCompany": "AWS"}]},
            "LifeCycle": {"Stage": "Technical Validation"}})
        stubber.add_response("associate_opportunity", {}, {
            "Catalog": CATALOG, "OpportunityIdentifier": ace_id, "RelatedEntityType": "Solutions",
            "RelatedEntityIdentifier": "S-0000007"})
        stubber.add_response("start_engagement_from_opportunity_task", {
            "TaskId": "task-7", "TaskStatus": "COMPLETE", "OpportunityId": ace_id}, {
            "Catalog": CATALOG, "Identifier": ace_id, "ClientToken": f"{token}-submit",
            "AwsSubmission": {"InvolvementType": "Co-Sell", "Visibility": "Full"}})
        created = opportunity(ace_id, modified=datetime.now(UTC) - timedelta(seconds=5), title=deal.name,
                              company="Initech", stage="Technical Validation", review="Submitted", monthly="5000.00")
        detail(stubber, CATALOG, created, summary=False)
        response = await share_api(edge, deal.id, {
            "solution_id": "S-0000007", "website": "https://initech.example", "country_code": "DE",
            "business_problem": "Reports take eleven hours every night."})
        assert response.status_code == 202, response.text
        assert response.json()["state"] == "queued" and response.json()["requested_by"].startswith("token:")
        share = await eventually(lambda: _share_in(worker_db, deal.id, "submitted"), what="the share submitted")
        assert share["opportunity_id"] == ace_id and share["task_id"] == "task-7"
        linked = await eventually(lambda: _linked(worker_db, deal.id), what="the deal linked to its ACE record")
        assert (linked["source"], linked["external_id"]) == ("aws", ace_id)
        assert json.loads(linked["ace"])["review_status"] == "Submitted"
        count = await sql(worker_db, "SELECT count(*) AS n FROM pipeline.opportunity WHERE name = $1", deal.name)
        assert count[0]["n"] == 1
        await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="every stubbed call made")
        audit = await sql(worker_db, "SELECT action FROM gateway.audit_log WHERE entity_id = $1", str(deal.id))
        assert "opportunity.shared" in [a["action"] for a in audit]
        status = await send(gateway_nc, sync.GetSyncStatus())
        assert any(s.deal_id == deal.id and s.state == "submitted" for s in status.shares)
        # Shared already (and now in ACE): refused, nothing sent again.
        again = await share_api(edge, deal.id, {"solution_id": "S-0000007"})
        assert again.status_code == 409 and ace_id in again.text

    async def test_what_cannot_be_shared_is_refused_and_nothing_is_sent(self, edge, worker_db, gateway_nc):
        deal, resale = await new_deal(gateway_nc), await new_deal(gateway_nc, pipeline="resale")
        for body, status in (({"solution_id": "S-1; DROP"}, 422), ({"solution_id": "S-1", "extra": 1}, 422),
                             ({"country_code": "de"}, 422), ({"business_problem": "too short"}, 422),
                             ({"website": "javascript:alert(1)"}, 422), ({"solution_id": "S-1" + "9" * 30}, 422),
                             ({"business_problem": "x" * 2001}, 422), ({"website": "https://a.b/\x00"}, 422),
                             # No solution named and the worker has no default.
                             ({}, 422),
                             # A country AWS does not know: refused by the worker from the model's own enum.
                             ({"solution_id": "S-1", "country_code": "ZZ"}, 422)):
            response = await share_api(edge, deal.id, body)
            assert response.status_code == status, (body, response.text)
        refused = await share_api(edge, deal.id, {"solution_id": "S-1", "country_code": "ZZ"})
        assert "country_code" in refused.text or "CountryCode" in refused.text
        assert (await share_api(edge, resale.id, {"solution_id": "S-1"})).status_code == 409
        assert (await share_api(edge, uuid4(), {"solution_id": "S-1"})).status_code == 404
        assert (await share_api(edge, deal.id, {"solution_id": "S-1"}, token="reader")).status_code == 403
        g, _, viewer = edge
        assert (await viewer.post(f"/api/opportunities/{deal.id}/share/aws", json={"solution_id": "S-1"})
                ).status_code == 403
        async with g.client() as anonymous:
            assert (await anonymous.post(f"/api/opportunities/{deal.id}/share/aws", json={})).status_code == 401
        assert await share_row(worker_db, deal.id) is None and await share_row(worker_db, resale.id) is None

    async def test_the_deal_page_offers_it_to_a_manager_and_the_form_queues_it(self, edge, worker_db, aws,
                                                                               gateway_nc):
        from gateway.auth import Role

        _, stubber = aws
        deal = await new_deal(gateway_nc)
        g, _, viewer = edge
        manager, csrf = g.people[Role.manager]  # type: ignore[misc]
        page = await manager.get(f"/opportunities/{deal.id}", headers={"accept": "text/html"})
        assert 'data-testid="share-aws"' in page.text
        seen = await viewer.get(f"/opportunities/{deal.id}", headers={"accept": "text/html"})
        assert seen.status_code == 200 and 'data-testid="share-aws"' not in seen.text
        bad = await manager.post(f"/opportunities/{deal.id}/share", headers={"accept": "text/html"},
                                 data={"solution_id": "S-9", "country_code": "ZZ", "csrf_token": csrf})
        assert bad.status_code == 422 and "is not one of AWS&#39;s values" in bad.text
        assert "AWS would refuse" not in bad.text  # beside its field, without the path into AWS's record
        # AWS refuses the create (a validation AWS does itself): the share says so and may be asked again.
        stubber.add_client_error("create_opportunity", "ValidationException", "Customer.Account.Industry is required",
                                 400)
        form = await manager.post(f"/opportunities/{deal.id}/share", headers={"accept": "text/html"},
                                  data={"solution_id": "S-9", "csrf_token": csrf})
        assert form.status_code == 303 and "Shared+to+AWS" in form.headers["location"]
        failed = await eventually(lambda: _share_in(worker_db, deal.id, "failed"), what="the refusal recorded")
        assert "Industry is required" in failed["error"]
        await eventually(lambda: asyncio.sleep(0, not stubber._queue), what="the create tried")
        page = await viewer.get("/sync", headers={"accept": "text/html"})
        assert 'data-testid="sync-shares"' in page.text and "Industry is required" in page.text
        # Asked again after the refusal: a new try, with a new token (the old one belongs to the refused fields).
        stubber.add_client_error("create_opportunity", "AccessDeniedException", "no", 403)
        again = await share_api(edge, deal.id, {"solution_id": "S-9"})
        assert again.status_code == 202, again.text
        retried = await eventually(lambda: _share_in(worker_db, deal.id, "failed", token_suffix="-1"),
                                   what="the second try")
        assert retried["client_token"] == f"partnerops-{deal.id}-1"


async def _share_in(db, deal_id, state: str, token_suffix: str = "") -> dict | None:
    row = await share_row(db, deal_id)
    return row if row and row["state"] == state and row["client_token"].endswith(token_suffix) else None


async def _linked(db, deal_id) -> dict | None:
    rows = await sql(db, "SELECT source, external_id, ace FROM pipeline.opportunity WHERE id = $1", deal_id)
    return dict(rows[0]) if rows and rows[0]["external_id"] else None


# ------------------------------------------------------------------------------ fuzzed EventBridge


def _fuzzed_events(count: int) -> list:
    """EventBridge-shaped payloads from hypothesis: valid events, events with any part replaced by any
    JSON (wrong types, deep nesting, control characters, huge numbers), and JSON that is no event."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from gateway.routes.sync import OPPORTUNITY_EVENTS, OTHER_EVENTS

    anything = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=25)
    ident = (st.from_regex(r"O[0-9]{1,19}", fullmatch=True) | st.from_regex(r"O[0-9]{18,25}", fullmatch=True)
             | st.text(max_size=25) | st.sampled_from(["O1\n", " O12", "O12 ", "o12", "O\uff11\uff12", "O12\x00"])
             | anything)
    detail = st.fixed_dictionaries(
        {"catalog": st.sampled_from([CATALOG, "AWS", "sandbox", "", "Sandbox\x00"]) | anything},
        optional={"opportunity": st.fixed_dictionaries({"identifier": ident}, optional={"x": anything})
                  | anything, "schemaVersion": anything})
    event = st.fixed_dictionaries(
        {"source": st.sampled_from(["aws.partnercentral-selling", "aws.partnercentral", ""]) | anything,
         "detail-type": st.sampled_from([*OPPORTUNITY_EVENTS, *OTHER_EVENTS, "Opportunity Deleted",
                                         "opportunity updated"]) | st.text(max_size=40),
         "detail": detail | anything},
        optional={"id": st.text(max_size=120) | anything, "time": st.text(max_size=30) | anything,
                  "account": anything, "resources": anything})
    found: list = []

    @settings(max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event | anything)
    def collect(payload) -> None:
        found.append(payload)

    collect()
    return found


def _refresh_wanted(payload) -> str | None:
    """The one record a payload may refresh, written out by hand: an opportunity event of the source,
    for the worker's catalog, naming an ACE id exactly; anything else refreshes nothing."""
    import re

    from gateway.routes.sync import OPPORTUNITY_EVENTS

    if not isinstance(payload, dict) or payload.get("source") != "aws.partnercentral-selling":
        return None
    if payload.get("detail-type") not in OPPORTUNITY_EVENTS or not isinstance(payload.get("detail"), dict):
        return None
    detail = payload["detail"]
    opp = detail.get("opportunity")
    if detail.get("catalog") != CATALOG or not isinstance(opp, dict):
        return None
    ident = opp.get("identifier")
    return ident if isinstance(ident, str) and re.fullmatch(r"O[0-9]{1,19}", ident) else None


class TestFuzzedEventBridge:
    # Generating the payloads takes a while on a loaded machine; the posts themselves are quick.
    @pytest.mark.timeout(600)
    async def test_a_fuzzed_payload_is_refused_or_refreshes_exactly_the_record_it_names(self, edge, worker_db):
        payloads = _fuzzed_events(150)
        wanted: set[str] = set()
        try:
            for payload in payloads:
                response = await post_event(edge, payload)
                target = _refresh_wanted(payload)
                assert response.status_code in (202, 422), (payload, response.status_code, response.text)
                if target is None:
                    assert response.status_code == 422 or response.json()["action"] in (
                        "ignored", "invitations_queued"), (payload, response.text)
                else:
                    assert response.status_code == 202, (payload, response.text)
                    assert response.json()["opportunity_id"] == target
                    wanted.add(target)
            refreshes = {r["key"] for r in await pending(worker_db) if r["kind"] == "refresh"}
            # Nothing but the records named (the driver may have tried some already: AWS is a Stubber with
            # no answers here, so each is put off and stays waiting).
            assert refreshes == wanted
            assert any(_refresh_wanted(p) is None and isinstance(p, dict) for p in payloads)
        finally:
            await sql(worker_db, "DELETE FROM aws_sync.sync_request")
