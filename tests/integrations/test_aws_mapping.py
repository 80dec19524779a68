"""ACE opportunities onto the contract: the pure mapping, with hostile and malformed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import pipeline as pc
from integrations.aws_partner_central import mapping
from tests.integrations.ace import aws_summary, opportunity

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def mapped(**kw):
    opp = opportunity(modified=NOW - timedelta(hours=1), **kw)
    return mapping.to_event(opp, aws_summary(opp), now=NOW)


class TestMapping:
    def test_an_opportunity_becomes_a_cosell_deal_with_its_ace_state(self):
        event = mapped(stage="Technical Validation", review="In review", monthly="1250.50",
                       NextSteps="Architecture review", ReviewComments="Add the customer's website")
        assert event.source.value == "aws" and event.pipeline == pc.COSELL and event.stage == "Technical Validation"
        assert event.amount == Decimal("15006.00") and event.currency == "USD"  # 1,250.50 a month x 12
        assert event.ace is not None and event.ace.review_status is pc.AceReviewStatus.in_review
        assert event.ace.next_steps == "Architecture review"
        assert event.ace.reviewer_comments == "Add the customer's website"

    def test_the_event_id_is_a_function_of_source_id_and_last_modified(self):
        opp = opportunity(modified=NOW - timedelta(hours=1))
        first = mapping.to_event(opp, None, now=NOW)
        again = mapping.to_event(dict(opp, Project={"Title": "Renamed"}), None, now=NOW)
        later = mapping.to_event(dict(opp, LastModifiedDate=NOW), None, now=NOW)
        assert first.event_id == again.event_id == mapping.event_id(opp["Id"], opp["LastModifiedDate"])
        assert later.event_id != first.event_id
        assert mapping.msg_id(opp["Id"], opp["LastModifiedDate"]).startswith(f"aws:{opp['Id']}:")

    def test_closed_lost_carries_its_reason(self):
        event = mapped(stage="Closed Lost", ClosedLostReason="Price")
        assert event.stage == "Closed Lost" and event.ace and event.ace.closed_lost_reason == "Price"

    def test_a_long_title_is_shortened_and_line_breaks_become_spaces(self):
        event = mapped(title="Migration\r\nphase 2\t" + "x" * 300)
        assert len(event.name) == mapping.NAME_MAX and event.name.startswith("Migration phase 2 x")
        assert event.name.endswith("…")

    def test_missing_title_and_stage_fall_back(self):
        opp = opportunity(modified=NOW - timedelta(hours=1))
        opp["Project"].pop("Title")
        opp["LifeCycle"].pop("Stage")
        event = mapping.to_event(opp, None, now=NOW)
        assert event.name == f"ACE {opp['Id']}" and event.stage == "Prospect"

    @pytest.mark.parametrize(("change", "reason"), [
        (dict(title="Evil\x00title"), "NUL"),
        (dict(company="Acme\x07"), "control character"),
        (dict(monthly="9" * 31), "beyond any deal"),
        (dict(monthly="1e5"), "not an amount"),
        (dict(currency="BOV"), "currency"),
        (dict(stage="Closed Won"), "unknown stage"),
        (dict(review="Escalated"), "unknown review status"),
        (dict(TargetCloseDate="2026-02-30"), "not a date"),
        (dict(TargetCloseDate="2500-01-01"), "between"),
        (dict(ReviewComments="bad\x00comment"), "NUL"),
    ])
    def test_hostile_values_are_refused_with_a_reason(self, change, reason):
        with pytest.raises(mapping.Unmappable, match=reason):
            mapped(**change)

    def test_a_last_modified_in_the_future_is_refused(self):
        opp = opportunity(modified=NOW + timedelta(days=365 * 400))
        with pytest.raises(mapping.Unmappable, match="in the future"):
            mapping.to_event(opp, None, now=NOW)

    def test_an_id_that_is_not_an_ace_id_is_refused(self):
        opp = opportunity(modified=NOW - timedelta(hours=1))
        opp["Id"] = "../../etc/passwd"
        with pytest.raises(mapping.Unmappable, match="not an ACE id"):
            mapping.to_event(opp, None, now=NOW)

    def test_spend_in_two_currencies_is_refused_not_added(self):
        opp = opportunity(modified=NOW - timedelta(hours=1))
        opp["Project"]["ExpectedCustomerSpend"].append(
            {"Amount": "10", "CurrencyCode": "EUR", "Frequency": "Monthly", "TargetCompany": "AWS"})
        with pytest.raises(mapping.Unmappable, match="two currencies"):
            mapping.to_event(opp, None, now=NOW)

    def test_very_long_reviewer_comments_are_shortened(self):
        event = mapped(ReviewComments="c" * 10_000)
        assert event.ace and len(event.ace.reviewer_comments or "") == mapping.COMMENTS_MAX
