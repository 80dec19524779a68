"""ACE opportunities through the worker into the pipeline: real Postgres and NATS, the pipeline service
running, and AWS played by botocore's Stubber (every request and answer checked against the model).
Passes are driven by the tests so each test's answers are its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from botocore.stub import Stubber

from integrations.aws_partner_central import mapping
from integrations.aws_partner_central.client import AwsUnavailable, PartnerCentral
from integrations.aws_partner_central.inbound import Inbound
from runtime.service import RunningService
from runtime.testing import eventually
from tests.integrations.ace import aws_summary, new_id, opportunity, summary_of
from tests.integrations.conftest import stubbed
from tests.pipeline.helpers import sql

SORT = {"SortBy": "LastModifiedDate", "SortOrder": "ASCENDING"}


def list_page(stubber: Stubber, catalog: str, opps: list[dict], *, token: str | None = None,
              next_token: str | None = None, after: datetime | None = None) -> None:
    expected = {"Catalog": catalog, "MaxResults": 2, "Sort": SORT}
    if after is not None:
        expected["LastModifiedDate"] = {"AfterLastModifiedDate": after}
    if token:
        expected["NextToken"] = token
    answer = {"OpportunitySummaries": [summary_of(o) for o in opps]}
    if next_token:
        answer["NextToken"] = next_token
    stubber.add_response("list_opportunities", answer, expected)


def detail(stubber: Stubber, catalog: str, opp: dict, *, summary: bool = True) -> None:
    stubber.add_response("get_opportunity", {**opp, "Catalog": catalog}, {"Catalog": catalog, "Identifier": opp["Id"]})
    if summary:
        stubber.add_response("get_aws_opportunity_summary", {**aws_summary(opp), "Catalog": catalog},
                             {"Catalog": catalog, "RelatedOpportunityIdentifier": opp["Id"]})
    else:
        stubber.add_client_error("get_aws_opportunity_summary", "ResourceNotFoundException", "no AWS side yet", 404)


def inbound(aws_shell: RunningService, aws: PartnerCentral) -> Inbound:
    return Inbound(aws_shell.sessions, aws, page_size=2, overlap=timedelta(seconds=60))


async def deals(db: dict[str, str], *ids: str) -> dict[str, dict]:
    rows = await sql(db, "SELECT external_id, stage, amount, name, source_modified_at, version, pipeline, ace "
                         "FROM pipeline.opportunity WHERE source = 'aws' AND external_id = ANY($1)", list(ids))
    return {r["external_id"]: dict(r) for r in rows}


async def landed(db: dict[str, str], opps: list[dict]) -> dict[str, dict]:
    """Waits until each opportunity is in the pipeline at its version; returns the deals."""
    async def check() -> dict[str, dict] | None:
        found = await deals(db, *(o["Id"] for o in opps))
        ok = all(o["Id"] in found and found[o["Id"]]["source_modified_at"] == o["LastModifiedDate"] for o in opps)
        return found if ok else None
    return await eventually(check, what="the deals in the pipeline")


async def outbox_rows(db: dict[str, str], ident: str) -> list:
    return await sql(db, "SELECT event_id, payload FROM aws_sync.outbox WHERE aggregate = $1 ORDER BY id",
                     f"external:aws:{ident}")


class TestIncrementalPass:
    async def test_two_pages_of_opportunities_become_cosell_deals(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        t0 = datetime.now(UTC) - timedelta(hours=3)
        opps = [opportunity(modified=t0 + timedelta(minutes=i), stage=s, monthly="2000.00")
                for i, s in enumerate(["Prospect", "Qualified", "Committed"])]
        list_page(stubber, aws.catalog, opps[:2], next_token="page-2")
        for o in opps[:2]:
            detail(stubber, aws.catalog, o)
        list_page(stubber, aws.catalog, opps[2:], token="page-2")
        detail(stubber, aws.catalog, opps[2], summary=False)
        counts = await inbound(aws_shell, aws).run_pass("incremental")
        stubber.assert_no_pending_responses()
        assert (counts.seen, counts.published, counts.unchanged, counts.failed) == (3, 3, 0, 0)
        found = await landed(sync_db, opps)
        assert [found[o["Id"]]["stage"] for o in opps] == ["prospect", "qualified", "committed"]
        assert {found[o["Id"]]["pipeline"] for o in opps} == {"cosell"}
        assert {found[o["Id"]]["amount"] for o in opps} == {Decimal("24000.00")}
        assert json.loads(found[opps[0]["Id"]]["ace"])["review_status"] == "Approved"
        # Published once each, with the event id of (source, id, last-modified).
        for o in opps:
            rows = await outbox_rows(sync_db, o["Id"])
            assert [r["event_id"] for r in rows] == [mapping.event_id(o["Id"], o["LastModifiedDate"])]

        # The next pass starts from the cursor (less the overlap) and finds nothing new.
        list_page(stubber, aws.catalog, opps[2:], after=opps[2]["LastModifiedDate"] - timedelta(seconds=60))
        counts = await inbound(aws_shell, aws).run_pass("incremental")
        stubber.assert_no_pending_responses()
        assert (counts.seen, counts.published, counts.unchanged) == (1, 0, 1)

    async def test_an_opportunity_changed_twice_during_a_page_ends_at_its_newest_version(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        t0 = datetime.now(UTC) - timedelta(hours=2)
        listed = opportunity(modified=t0, stage="Prospect")
        newest = dict(listed, LastModifiedDate=t0 + timedelta(minutes=30),
                      LifeCycle={"Stage": "Business Validation", "ReviewStatus": "Approved"})
        # The list still shows the first version; GetOpportunity already answers the newest. The
        # change then shows up in the list again (it moved to the end), already published.
        list_page(stubber, aws.catalog, [listed], next_token="more")
        detail(stubber, aws.catalog, newest)
        list_page(stubber, aws.catalog, [newest], token="more")
        # The list moved while it was read (a record may have slipped past a page unseen): the cursor
        # stayed where it was and the list is read again from it, finding nothing new.
        list_page(stubber, aws.catalog, [newest])
        counts = await inbound(aws_shell, aws).run_pass("reconcile")
        stubber.assert_no_pending_responses()
        assert (counts.published, counts.unchanged) == (1, 2)
        found = await landed(sync_db, [newest])
        assert found[newest["Id"]]["stage"] == "business_validation"
        assert len(await outbox_rows(sync_db, newest["Id"])) == 1

    async def test_an_older_version_read_after_a_newer_one_changes_nothing(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        t0 = datetime.now(UTC) - timedelta(hours=2)
        newer = opportunity(modified=t0 + timedelta(minutes=10), stage="Committed")
        older = dict(newer, LastModifiedDate=t0, LifeCycle={"Stage": "Prospect"})
        sync = inbound(aws_shell, aws)
        detail(stubber, aws.catalog, newer)
        assert await sync.refresh(newer["Id"]) == "published"
        detail(stubber, aws.catalog, older)  # a stale read (an eventually consistent replica)
        assert await sync.refresh(newer["Id"]) == "unchanged"
        found = await landed(sync_db, [newer])
        assert found[newer["Id"]]["stage"] == "committed"
        assert len(await outbox_rows(sync_db, newer["Id"])) == 1


class TestFailures:
    async def test_throttling_mid_pass_resumes_from_the_cursor_without_loss_or_doubles(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        t0 = datetime.now(UTC) - timedelta(hours=5)
        opps = [opportunity(modified=t0 + timedelta(minutes=10 * i)) for i in range(4)]
        list_page(stubber, aws.catalog, opps[:2], next_token="p2")
        for o in opps[:2]:
            detail(stubber, aws.catalog, o)
        # Still throttled once botocore's own retries are spent (they run before the Stubber answers).
        stubber.add_client_error("list_opportunities", "ThrottlingException", "Rate exceeded", 429)
        sync = inbound(aws_shell, aws)
        try:
            await sync.run_pass("incremental")
            raise AssertionError("the pass should have failed")
        except AwsUnavailable as exc:
            assert "ThrottlingException" in str(exc)
        runs = await sql(sync_db, "SELECT ok, error, published FROM aws_sync.sync_run WHERE catalog = $1",
                         aws.catalog)
        assert [(r["ok"], r["published"]) for r in runs] == [(False, 2)] and "Throttling" in runs[0]["error"]
        # The next pass starts at the last record done (less the overlap): the first two again, skipped.
        resume = opps[1]["LastModifiedDate"] - timedelta(seconds=60)
        list_page(stubber, aws.catalog, opps[1:3], next_token="p2b", after=resume)
        detail(stubber, aws.catalog, opps[2])
        list_page(stubber, aws.catalog, opps[3:], token="p2b", after=resume)
        detail(stubber, aws.catalog, opps[3])
        counts = await sync.run_pass("incremental")
        stubber.assert_no_pending_responses()
        assert (counts.published, counts.unchanged) == (2, 1)
        await landed(sync_db, opps)
        for o in opps:
            assert len(await outbox_rows(sync_db, o["Id"])) == 1

    async def test_a_server_error_reading_one_record_fails_the_pass_and_keeps_the_cursor(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        opp = opportunity()
        list_page(stubber, aws.catalog, [opp])
        stubber.add_client_error("get_opportunity", "InternalServerException", "oops", 500)
        sync = inbound(aws_shell, aws)
        try:
            await sync.run_pass("incremental")
            raise AssertionError("the pass should have failed")
        except AwsUnavailable:
            pass
        cursor = await sql(sync_db, "SELECT watermark FROM aws_sync.cursor WHERE catalog = $1", aws.catalog)
        assert not cursor or cursor[0]["watermark"] is None
        assert await outbox_rows(sync_db, opp["Id"]) == []

    async def test_hostile_records_are_problems_and_the_others_still_land(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        t0 = datetime.now(UTC) - timedelta(hours=1)
        evil = opportunity(modified=t0, title="Drop\x00table", monthly="9" * 31)
        gone = opportunity(modified=t0 + timedelta(seconds=1))
        good = opportunity(modified=t0 + timedelta(seconds=2), company="Initech")
        list_page(stubber, aws.catalog, [evil, gone], next_token="n")
        detail(stubber, aws.catalog, evil)
        stubber.add_client_error("get_opportunity", "ResourceNotFoundException", "gone", 404)
        list_page(stubber, aws.catalog, [good], token="n")
        detail(stubber, aws.catalog, good)
        counts = await inbound(aws_shell, aws).run_pass("incremental")
        stubber.assert_no_pending_responses()
        assert (counts.published, counts.failed) == (1, 2)
        await landed(sync_db, [good])
        assert await deals(sync_db, evil["Id"], gone["Id"]) == {}
        problems = {r["opportunity_id"]: r["reason"] for r in await sql(
            sync_db, "SELECT opportunity_id, reason FROM aws_sync.sync_problem WHERE catalog = $1", aws.catalog)}
        assert set(problems) == {evil["Id"], gone["Id"]}
        assert "NUL" in problems[evil["Id"]] or "beyond" in problems[evil["Id"]]
        assert "ResourceNotFoundException" in problems[gone["Id"]]
        # A later, sane version of the hostile record lands and clears its problem.
        fixed = dict(evil, LastModifiedDate=t0 + timedelta(minutes=5), Project={"Title": "Fixed"})
        detail(stubber, aws.catalog, fixed)
        assert await inbound(aws_shell, aws).refresh(fixed["Id"]) == "published"
        await landed(sync_db, [fixed])
        assert not await sql(sync_db, "SELECT 1 FROM aws_sync.sync_problem WHERE opportunity_id = $1", evil["Id"])

    async def test_a_summary_without_an_id_or_date_is_counted_as_failed(self, aws_shell, sync_db):
        aws, stubber = stubbed()
        stubber.add_response("list_opportunities", {"OpportunitySummaries": [{"Catalog": aws.catalog}]},
                             {"Catalog": aws.catalog, "MaxResults": 2, "Sort": SORT})
        counts = await inbound(aws_shell, aws).run_pass("incremental")
        assert (counts.seen, counts.failed, counts.published) == (1, 1, 0)


def test_every_stubbed_answer_is_checked_against_the_model():
    # The Stubber refuses an answer the model does not allow: the AWS side of these tests cannot drift.
    aws, stubber = stubbed()
    import pytest
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        stubber.add_response("get_opportunity", {"Id": new_id(), "Catalog": aws.catalog, "LastModifiedDate": "x",
                                                 "CreatedDate": 12, "RelatedEntityIdentifiers": {}, "Bogus": 1})
    # And a request the model does not allow never leaves the client.
    stubber.add_response("list_opportunities", {"OpportunitySummaries": []})
    with pytest.raises(ParamValidationError):
        aws.client.list_opportunities(Catalog=aws.catalog, MaxResults="ten")
