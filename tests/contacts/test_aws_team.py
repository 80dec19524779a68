"""AWS's people on an ACE opportunity travel on the contract (ace.team), so the relationships service
makes them contacts: the sync worker's mapping of GetAwsOpportunitySummary's OpportunityTeam."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from integrations.aws_partner_central import mapping
from tests.integrations.ace import aws_summary, opportunity

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_aws_team_is_carried_and_unreadable_members_are_left_out():
    opp = opportunity(modified=NOW - timedelta(hours=1))
    summary = aws_summary(opp)
    summary["OpportunityTeam"] += [{"Email": "not an email", "FirstName": "X"}, "junk",
                                   {"Email": "ao@amazon.example", "BusinessTitle": "AWSAccountOwner"}]
    event = mapping.to_event(opp, summary, now=NOW)
    assert event.ace is not None
    assert [(m.email, m.name, m.role) for m in event.ace.team] == [
        ("pdm@amazon.example", "Pat Dee", "PDM"), ("ao@amazon.example", None, "AWSAccountOwner")]


def test_no_summary_no_team():
    opp = opportunity(modified=NOW - timedelta(hours=1))
    assert mapping.to_event(opp, None, now=NOW).ace.team == ()
