"""Goals and competencies through the relationships service on real NATS and Postgres: launch and
sourced-pipeline progress equal a recount of the pipeline's deals however their events arrive (twice,
out of order, reopened), hand-entered progress, the pace forecast; competencies publish their renewal
and checklist deadlines."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from contracts import competencies as k
from contracts import deadlines as d
from contracts import goals as g
from contracts import pipeline as p
from contracts.base import ErrorKind
from runtime import deadletter
from runtime.commands import send
from runtime.errors import CommandFailed
from runtime.testing import eventually
from tests.funding.conftest import published
from tests.support.bus import publish, settled

YEAR = datetime.now(UTC).year
Q_START = datetime(YEAR, 1, 1, tzinfo=UTC)


def snapshot(o_id: uuid.UUID, version: int, *, hyperscaler: str | None, created_at: datetime,
             launched_at: datetime | None = None, amount: str = "1000.00", currency: str = "USD",
             deal_model: str = "cosell") -> p.Opportunity:
    won = launched_at is not None
    return p.Opportunity(
        id=o_id, version=version, name=f"deal {o_id.hex[:6]}", pipeline="cosell",
        stage="launched" if won else "qualified", stage_name="Launched" if won else "Qualified",
        probability=100 if won else 20, outcome=p.Outcome.won if won else p.Outcome.open, partner_id=None,
        customer="Acme", amount=Decimal(amount), currency=currency, expected_close_date=None, owner=None,
        deal_model=deal_model, source=p.Source.aws, hyperscaler=hyperscaler, created_at=created_at,
        updated_at=created_at, stage_entered_at=launched_at or created_at, closed_at=launched_at,
        launched_at=launched_at)


def events_of(s: p.Opportunity) -> p.OpportunityCreatedV1 | p.OpportunityStageChangedV1:
    if s.version == 1:
        return p.OpportunityCreatedV1(opportunity=s)
    return p.OpportunityStageChangedV1(opportunity=s, from_stage="x", to_stage=s.stage, changed_by=None,
                                       changed_at=s.updated_at)


async def test_a_launch_goal_equals_a_recount_of_launched_deals_whatever_the_order(nc, service):
    rng = random.Random(13)
    goal = await send(nc, g.CreateGoal(hyperscaler="azure", period=f"{YEAR}-Q1", metric="launched_opportunities",
                                       target=Decimal(5)))
    q_end = datetime(YEAR, 4, 1, tzinfo=UTC)
    final: dict[uuid.UUID, p.Opportunity] = {}
    events = []
    for i in range(24):
        o_id = uuid.uuid4()
        created = Q_START - timedelta(days=10) + timedelta(days=rng.randrange(0, 100))
        hs = rng.choice(["azure", "azure", "gcp", None])
        history = [snapshot(o_id, 1, hyperscaler=hs, created_at=created)]
        if i % 3 != 0:
            launched = Q_START + timedelta(days=rng.randrange(-20, 110), hours=rng.randrange(24))
            history.append(snapshot(o_id, 2, hyperscaler=hs, created_at=created, launched_at=launched))
        if i % 5 == 0 and len(history) == 2:  # reopened: moved back out of Launched
            history.append(snapshot(o_id, 3, hyperscaler=hs, created_at=created))
        final[o_id] = history[-1]
        events += [events_of(s) for s in history]
    # Out of order and twice: newer versions win, the inbox skips the duplicates.
    rng.shuffle(events)
    for e in events + events[: len(events) // 2]:
        await publish(nc, e)
    await settled(nc, service)
    recount = sum(1 for s in final.values() if s.hyperscaler == "azure" and s.launched_at is not None
                  and Q_START <= s.launched_at < q_end)
    detail = await send(nc, g.GetGoal(goal_id=goal.id))
    assert detail.progress == Decimal(recount)
    assert recount > 0
    assert sorted(c.opportunity_id for c in detail.contributions) == sorted(
        o for o, s in final.items() if s.hyperscaler == "azure" and s.launched_at and Q_START <= s.launched_at < q_end)
    assert detail.source == "events" and detail.period_label == f"calendar quarter {YEAR}-Q1 (UTC)"
    # Each change of its progress was published (the dashboard's read model follows these).
    async def last_change_is_the_recount() -> bool:
        changed = await published(nc, g.GoalChangedV1.subject, where=lambda b: b["goal"]["id"] == str(goal.id))
        return Decimal(max(changed, key=lambda b: b["goal"]["version"])["goal"]["progress"]) == recount

    await eventually(last_change_is_the_recount, "the goal's last published change to carry the recount")


async def test_sourced_pipeline_counts_co_sell_deals_created_in_the_period_in_the_goals_currency(nc, service):
    goal = await send(nc, g.CreateGoal(hyperscaler="gcp", period=str(YEAR), metric="sourced_pipeline",
                                       target=Decimal("1000000"), currency="EUR"))
    inside = Q_START + timedelta(days=40)
    for amount, currency, model, at in (("100.10", "EUR", "cosell", inside), ("200.20", "EUR", "cosell", inside),
                                        ("999.00", "USD", "cosell", inside), ("50.00", "EUR", "resale", inside),
                                        ("70.00", "EUR", "cosell", Q_START - timedelta(seconds=1))):
        await publish(nc, events_of(snapshot(uuid.uuid4(), 1, hyperscaler="gcp", created_at=at, amount=amount,
                                             currency=currency, deal_model=model)))
    await settled(nc, service)
    detail = await send(nc, g.GetGoal(goal_id=goal.id))
    assert detail.progress >= Decimal("300.30")  # other tests of this module may add GCP deals of this year
    assert detail.not_counted >= 1
    assert all(c.currency == "EUR" for c in detail.contributions if c.counted)


async def test_manual_goals_take_progress_by_hand_and_event_goals_refuse_it(nc):
    goal = await send(nc, g.CreateGoal(hyperscaler="aws", period=f"{YEAR}", metric="certifications",
                                       target=Decimal(10), manual_progress=Decimal(3)))
    assert goal.progress == 3 and goal.source == "manual"
    goal = await send(nc, g.UpdateGoal(goal_id=goal.id, manual_progress=Decimal(10)))
    assert goal.status == g.GoalStatus.met
    launch = await send(nc, g.CreateGoal(hyperscaler="aws", period=f"{YEAR}", metric="launched_opportunities",
                                         target=Decimal(4)))
    with pytest.raises(CommandFailed) as err:
        await send(nc, g.UpdateGoal(goal_id=launch.id, manual_progress=Decimal(1)))
    assert err.value.error.field == "manual_progress"
    reply = json.loads((await nc.request(g.CreateGoal.subject, json.dumps(
        {"hyperscaler": "aws", "period": "2026-Q5", "metric": "custom", "target": "1"}).encode(), timeout=10)).data)
    assert reply["error"]["kind"] == ErrorKind.invalid and reply["error"]["field"] == "period"
    with pytest.raises(CommandFailed) as err:
        await send(nc, g.CreateGoal(hyperscaler="aws", period="2026", metric="certifications", target=Decimal("1.5")))
    assert err.value.error.field == "target"
    listing = await send(nc, g.ListGoals(hyperscaler="aws", period=str(YEAR)))
    assert {x.id for x in listing.items} >= {goal.id, launch.id}
    changed = await published(nc, g.GoalChangedV1.subject, where=lambda b: b["goal"]["id"] == str(goal.id), count=2)
    assert [b["goal"]["version"] for b in changed] == [1, 2]


@pytest.mark.parametrize(("progress", "today", "forecast", "status"), [
    (Decimal(2), date(2026, 2, 14), Decimal("4.00"), g.GoalStatus.at_risk),  # 45 of 90 days gone
    (Decimal(3), date(2026, 2, 14), Decimal("6.00"), g.GoalStatus.on_track),
    (Decimal(0), date(2025, 12, 31), Decimal(0), g.GoalStatus.not_started),
    (Decimal(4), date(2026, 4, 1), Decimal(4), g.GoalStatus.missed),
    (Decimal(5), date(2026, 1, 1), Decimal("450.00"), g.GoalStatus.met),
])
def test_pace_forecast_and_status(progress, today, forecast, status):
    start, end = g.period_range("2026-Q1")
    assert (start, end) == (date(2026, 1, 1), date(2026, 4, 1))
    assert g.pace(progress, start, end, today) == forecast
    assert g.status(progress, Decimal(5), start, end, today) == status


def test_periods():
    assert g.period_range("2028") == (date(2028, 1, 1), date(2029, 1, 1))
    assert g.period_range("2026-Q4") == (date(2026, 10, 1), date(2027, 1, 1))
    for bad in ("2026-Q0", "26-Q1", "2026Q1", "0999", "2026-Q4 "):
        with pytest.raises(ValueError):
            g.period_range(bad)


async def test_a_hostile_pipeline_event_goes_to_the_dead_letters(nc, service):
    body = events_of(snapshot(uuid.uuid4(), 1, hyperscaler="aws", created_at=Q_START)).model_dump(mode="json")
    body["opportunity"]["hyperscaler"] = "oracle"
    await publish(nc, p.OpportunityCreatedV1(opportunity=snapshot(uuid.uuid4(), 1, hyperscaler=None,
                                                                  created_at=Q_START)),
                  data=json.dumps(body).encode(), msg_id=str(uuid.uuid4()))
    await settled(nc, service)
    parked = await deadletter.list_all(nc.jetstream(), consumer="relationships__pipeline_opportunity_created_v1")
    assert any("hyperscaler" in (x.reason or "") for x in parked)


# ------------------------------------------------------------------------------------- competencies


async def test_a_competency_publishes_its_renewal_and_checklist_deadlines(nc):
    c = await send(nc, k.CreateCompetency(hyperscaler="aws", name="Migration Consulting Competency",
                                          achieved_on=date(2024, 1, 10), renewal_date=date(2027, 1, 31),
                                          time_zone="America/New_York"))
    assert [x.kind for x in c.deadlines] == [d.DeadlineKind.competency_renewal]
    c = await send(nc, k.AddRequirement(competency_id=c.id, kind="certified_individuals", title="4 certified SAs",
                                        required=4, done=1, due_date=date(2026, 12, 15)))
    c = await send(nc, k.AddRequirement(competency_id=c.id, kind="case_study", title="2 public case studies",
                                        required=2))
    assert (c.complete_items, c.total_items) == (0, 2)
    sas = c.requirements[0]
    c = await send(nc, k.UpdateRequirement(competency_id=c.id, requirement_id=sas.id, done=4))
    item = next(x for x in c.deadlines if x.kind == d.DeadlineKind.competency_requirement_due)
    assert item.status == d.DeadlineStatus.met and c.complete_items == 1
    c = await send(nc, k.UpdateCompetency(competency_id=c.id, renewal_date=date(2029, 1, 31)))
    renewal = await published(nc, d.DeadlineChangedV1.subject, count=2,
                              where=lambda b: b["deadline"]["key"] == f"competency:{c.id}:renewal")
    assert [b["deadline"]["due_date"] for b in renewal] == ["2027-01-31", "2029-01-31"]
    assert renewal[0]["deadline"]["due_at"].startswith("2027-02-01T05:00:00")  # midnight in New York
    c = await send(nc, k.UpdateRequirement(competency_id=c.id, requirement_id=sas.id, removed=True))
    assert c.total_items == 1
    gone = await published(nc, d.DeadlineChangedV1.subject, count=3,
                           where=lambda b: b["deadline"]["key"] == f"competency:{c.id}:requirement:{sas.id}")
    assert gone[-1]["deadline"]["status"] == "cancelled"
    with pytest.raises(CommandFailed) as err:
        await send(nc, k.UpdateRequirement(competency_id=c.id, requirement_id=c.requirements[0].id, done=3))
    assert err.value.error.field == "done"
    with pytest.raises(CommandFailed) as err:
        await send(nc, k.UpdateCompetency(competency_id=c.id, renewal_date=date(2023, 1, 1)))
    assert err.value.error.field == "renewal_date"
    listing = await send(nc, k.ListCompetencies(hyperscaler="aws"))
    assert c.id in [x.id for x in listing.items]


def test_competency_status():
    today = date(2026, 12, 1)
    assert k.competency_status(None, None, today) == k.CompetencyStatus.pursuing
    assert k.competency_status(date(2024, 1, 1), date(2026, 11, 30), today) == k.CompetencyStatus.lapsed
    assert k.competency_status(date(2024, 1, 1), date(2027, 3, 1), today) == k.CompetencyStatus.renewal_due
    assert k.competency_status(date(2024, 1, 1), date(2027, 3, 2), today) == k.CompetencyStatus.active
