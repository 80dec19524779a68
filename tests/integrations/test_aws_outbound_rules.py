"""What may go out to ACE and when: the lock rules as plain functions, every request they build
checked against the real `partnercentral-selling` model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import botocore.session
import pytest
from botocore.validate import validate_parameters

from integrations.aws_partner_central import outbound_rules as rules
from tests.integrations.ace import opportunity

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MODEL = botocore.session.get_session().get_service_model("partnercentral-selling")
EDIT = {"stage": "committed", "expected_close_date": "2027-03-31", "amount": "36000.00", "next_steps": "Sign"}


def current(review: str | None, **kw) -> dict:
    opp = opportunity(modified=NOW - timedelta(hours=2), review=review, stage="Qualified", monthly="1000.00",
                      TargetCloseDate="2027-01-31", NextSteps="Demo", ReviewComments="Add the website",
                      NextStepsHistory=[{"Value": "Demo", "Time": NOW - timedelta(days=1)}], **kw)
    return opp


def valid(request: dict) -> None:
    validate_parameters({"Catalog": "Sandbox", **request}, MODEL.operation_model("UpdateOpportunity").input_shape)


class TestLocks:
    @pytest.mark.parametrize("review", ["Submitted", "In review", "Rejected"])
    def test_a_locked_record_gets_nothing_and_the_edit_waits(self, review):
        plan = rules.plan_update(current(review), EDIT, NOW)
        assert plan.action == "hold" and plan.request is None and set(plan.held) == set(EDIT)
        assert review in plan.reason

    def test_action_required_sends_only_the_fields_it_opens(self):
        cur = current("Action Required")
        plan = rules.plan_update(cur, EDIT, NOW)
        assert plan.action == "send" and set(plan.sent) == {"expected_close_date", "amount"}
        assert set(plan.held) == {"stage", "next_steps"}
        request = plan.request
        valid(request)
        # Nothing locked changed: stage and next steps go back exactly as AWS has them.
        assert request["LifeCycle"]["Stage"] == "Qualified" and request["LifeCycle"]["NextSteps"] == "Demo"
        assert request["LifeCycle"]["TargetCloseDate"] == "2027-03-31"
        assert request["Project"]["ExpectedCustomerSpend"][0]["Amount"] == "3000.00"  # 36,000 a year
        assert request["LastModifiedDate"] == cur["LastModifiedDate"] and request["Identifier"] == cur["Id"]

    def test_action_required_with_only_locked_fields_holds_everything(self):
        plan = rules.plan_update(current("Action Required"), {"stage": "committed"}, NOW)
        assert plan.action == "hold" and plan.held == ("stage",)

    @pytest.mark.parametrize("review", ["Approved", "Pending Submission", None])
    def test_an_open_record_gets_every_changed_field(self, review):
        plan = rules.plan_update(current(review), EDIT, NOW)
        assert plan.action == "send" and set(plan.sent) == set(EDIT) and plan.held == ()
        valid(plan.request)
        life = plan.request["LifeCycle"]
        assert life["Stage"] == "Committed" and life["NextSteps"] == "Sign"
        # Read-only parts are never sent back.
        assert not {"ReviewStatus", "ReviewComments", "ReviewStatusReason", "NextStepsHistory"} & set(life)

    def test_a_field_aws_changed_after_the_edit_keeps_aws_s_value(self):
        cur = current("Approved")  # AWS moved it to Qualified two hours ago
        base = {**rules.current_values(cur), "stage": "prospect"}
        plan = rules.plan_update(cur, {"stage": "committed"}, NOW - timedelta(hours=3), base)
        assert plan.action == "superseded" and plan.request is None and "newer" in plan.reason
        # Only the conflicting field: the rest of the edit still goes out.
        plan = rules.plan_update(cur, EDIT, NOW - timedelta(hours=3), base)
        assert plan.action == "send" and "stage" not in plan.sent and "kept" in plan.reason
        assert plan.request["LifeCycle"]["Stage"] == "Qualified"

    def test_our_edit_made_after_aws_s_change_wins(self):
        cur = current("Approved")
        base = {**rules.current_values(cur), "stage": "prospect"}
        plan = rules.plan_update(cur, {"stage": "committed"}, NOW, base)
        assert plan.action == "send" and plan.request["LifeCycle"]["Stage"] == "Committed"

    def test_a_review_ending_after_the_edit_is_no_conflict(self):
        cur = current("Approved")  # modified (the review ended) after the edit, its fields as before
        plan = rules.plan_update(cur, EDIT, NOW - timedelta(hours=3), rules.current_values(cur))
        assert plan.action == "send" and set(plan.sent) == set(EDIT)

    def test_an_edit_ace_already_holds_sends_nothing(self):
        same = {"stage": "qualified", "expected_close_date": "2027-01-31", "amount": "12000.00", "next_steps": "Demo"}
        assert rules.plan_update(current("Approved"), same, NOW).action == "nothing"


class TestEdits:
    def test_the_deal_holding_what_was_published_is_no_edit(self):
        published = {"stage": "qualified", "amount": "12000.00", "name": "X", "currency": "USD",
                     "next_steps": None, "expected_close_date": None}
        assert rules.changed(published, dict(published)) == {}
        assert rules.changed(published, {**published, "stage": "committed"}) == {"stage": "committed"}
