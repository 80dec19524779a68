"""The funding demo through the real pipeline and relationships services: a request in every stage, one
expiring in about a week, goals with AWS and GCP for this year and quarter, three competencies with one
renewal close; seeding twice changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contracts import competencies as kc
from contracts import deadlines as dl
from contracts import funding as fc
from contracts import goals as gc
from contracts.quarters import Quarter
from gateway.demo_funding import seed_funding
from gateway.demo_pipeline import seed_pipeline
from runtime import bus
from runtime.commands import send

# The pipeline's demo (hundreds of deals through the services) comes first, and takes minutes under load.
pytestmark = pytest.mark.timeout(600)


async def test_the_demo_has_every_stage_a_deadline_next_week_goals_and_competencies(gw, private_nats):
    nc = await bus.connect(private_nats, name="demo-test")
    try:
        await seed_pipeline(nc)
        counts = await seed_funding(nc)
        assert counts["fund_requests"] >= len(fc.FundStage)
        requests = (await send(nc, fc.ListFundRequests(limit=500))).items
        assert {r.stage for r in requests} == set(fc.FundStage)
        now = datetime.now(UTC)
        expiring = [d for r in requests for d in r.deadlines if d.kind == dl.DeadlineKind.fund_request_expiry
                    and d.status == dl.DeadlineStatus.open and 6 <= dl.days_left(d.due_date, d.time_zone, now) <= 8]
        assert expiring, "a request expires in about a week"
        assert any(r.partner_id for r in requests) and any(r.opportunities for r in requests)
        completed = next(r for r in requests if r.stage == fc.FundStage.completed)
        assert completed.received > 0 and completed.received == completed.claimed

        goals = (await send(nc, gc.ListGoals())).items
        today = now.date()
        periods = {str(today.year), Quarter.calendar_of(today).label}
        assert {(x.hyperscaler.value, x.period) for x in goals} >= {(h, p) for h in ("aws", "gcp") for p in periods}
        competencies = (await send(nc, kc.ListCompetencies())).items
        assert len(competencies) == 3
        assert sum(1 for c in competencies if c.status == kc.CompetencyStatus.renewal_due) == 1

        again = await seed_funding(nc)
        assert again == {"fund_requests": 0, "goals": 0, "competencies": 0}
        assert (await send(nc, fc.ListFundRequests(limit=1))).total == len(requests)
    finally:
        await nc.close()
