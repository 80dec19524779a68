"""The demo seed through the real pipeline service and gateway: a living pipeline for a first look."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from contracts import pipeline as c
from contracts.quarters import Quarter
from gateway.demo_pipeline import seed_pipeline
from runtime.commands import send
from runtime.testing import eventually
from tests.pipeline.helpers import sql


async def test_the_demo_seed_makes_a_living_pipeline(bus_client, pipeline_db, api):
    await send(bus_client, c.UpdatePipelineSettings(tier_thresholds=c.TierThresholds(), fiscal_year_start_month=1))
    counts = await seed_pipeline(bus_client)
    assert counts["partners"] >= 30 and counts["opportunities"] >= 250

    partners = (await send(bus_client, c.ListPartners(limit=500))).items
    isvs = [p for p in partners if p.type == "isv" and p.owner in ("maria", "tom", "aisha")]
    assert len(isvs) >= 20
    names = {p.name for p in partners}
    assert {"Amazon Web Services", "Google Cloud", "Microsoft Azure"} <= names
    assert {"referral", "msp"} <= {p.type for p in partners}

    async def external_arrived():
        rows = await sql(pipeline_db, "SELECT source, count(*) AS n FROM pipeline.opportunity GROUP BY source")
        by_source = {r["source"]: r["n"] for r in rows}
        return by_source.get("aws", 0) >= 40 and by_source.get("gcp", 0) >= 15 and by_source

    await eventually(external_arrived, timeout=30, what="the sync worker's events")
    rows = await sql(pipeline_db, "SELECT pipeline, stage, outcome, owner, closed_at FROM pipeline.opportunity "
                                  "WHERE owner IN ('maria', 'tom', 'aisha', 'vp')")
    assert len(rows) >= 250
    assert {r["pipeline"] for r in rows} == {"resale", "cosell"}
    assert len({(r["pipeline"], r["stage"]) for r in rows}) >= 11
    assert set(Counter(r["owner"] for r in rows)) == {"maria", "tom", "aisha", "vp"}
    today = datetime.now(UTC).date()
    this_q = Quarter.fiscal_of(today, 1).range()
    last_q = Quarter.fiscal_of(today, 1).shift(-1).range()
    closed_days = [r["closed_at"].date() for r in rows if r["closed_at"]]
    assert any(this_q[0] <= d < this_q[1] for d in closed_days)
    assert any(last_q[0] <= d < last_q[1] for d in closed_days)
    tiers = Counter([(await send(bus_client, c.GetPartner(partner_id=p.id))).tier for p in isvs])
    assert len(tiers) >= 3, tiers

    k = (await api.get("/api/kpis/pipeline")).json()
    assert k["pipeline_by_stage"] and k["won"] > 0 and k["arr_by_partner"]
    again = await seed_pipeline(bus_client)
    assert again == {"partners": 0, "opportunities": 0, "external": 0}
