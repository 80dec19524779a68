"""What the contacts add up to: the heatmap (strength against value at stake), the ranked attention
list for the week, and the dashboard's relationship health. Read-only; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import contacts as c
from services.relationships.contacts import domain, ranking
from services.relationships.contacts.config import settings_of
from services.relationships.contacts.repository import ContactRepository
from services.relationships.contacts.service import to_contract

CENT = Decimal("0.01")
BANDS = ("0-19", "20-39", "40-59", "60-79", "80-100")
COOLING_ON_DASHBOARD = 5
# What falls outside a member's capacity is listed up to this many (the count says how many more).
MAX_OUTSIDE = 25
DEADLINE_WORDS = {"fund_request_expiry": "Fund request expiry", "fund_claim_due": "Funding claim",
                  "milestone_claim_due": "Milestone claim", "competency_renewal": "Competency renewal",
                  "competency_requirement_due": "Competency requirement", "onboarding_step_due": "Onboarding step",
                  "certification_due": "Certification due", "certification_expiry": "Certification expiry"}


@dataclass
class Row:
    """One active contact with its figures at one instant."""

    id: uuid.UUID
    partner_id: uuid.UUID
    org_name: str
    owner: str | None
    name: str
    role: str | None
    crucial: bool
    score: float
    touched: bool
    last_touch_at: datetime | None
    cold_at: datetime | None
    stake: Decimal


def _rows(raw: list[Any], settings: c.StrengthSettings, now: datetime) -> list[Row]:
    out = []
    for r in raw:
        energy = domain.Energy(r.energy, r.last_touch_at, r.touches)
        out.append(Row(id=r.id, partner_id=r.partner_id, org_name=r.org_name, owner=r.owner, name=r.name,
                       role=r.role, crucial=r.crucial,
                       score=domain.strength(settings, energy, now, c.Seniority(r.seniority)),
                       touched=r.last_touch_at is not None, last_touch_at=r.last_touch_at, cold_at=r.cold_at,
                       stake=Decimal(r.linked + r.unlinked).quantize(CENT)))
    return out


# --------------------------------------------------------------------------------------- heatmap


async def heatmap(session: AsyncSession, cmd: c.GetHeatmap) -> c.Heatmap:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    now = datetime.now(UTC)
    rows = _rows(await repo.all_for_map(cmd.crucial_only), settings.strength, now)
    groups: dict[str, list[Row]] = {}
    labels: dict[str, str] = {}
    for r in rows:
        key = str(r.partner_id) if cmd.group_by == c.HeatmapGroup.organisation else (r.owner or "")
        groups.setdefault(key, []).append(r)
        labels[key] = r.org_name if cmd.group_by == c.HeatmapGroup.organisation else (r.owner or "")

    # Contacts' stakes are shares of the pipeline (each deal once across all contacts), so a group's
    # value at stake is the sum of its contacts'.
    def group_value(members: list[Row]) -> Decimal:
        return sum((m.stake for m in members), Decimal(0))

    out = []
    for key, members in groups.items():
        members.sort(key=lambda m: (-m.stake, -m.score, m.name.lower(), m.id))
        out.append(c.HeatRow(
            key=key, label=labels[key], value_at_stake=group_value(members).quantize(CENT), contacts=len(members),
            average_score=domain.display(sum(m.score for m in members) / len(members)),
            cells=[c.HeatCell(contact_id=m.id, name=m.name, role=m.role, score=domain.display(m.score),
                              band=domain.band(settings.strength, m.score, m.touched), crucial=m.crucial,
                              value_at_stake=m.stake, days_until_cold=domain.days_until(m.cold_at, now))
                   for m in members[:cmd.per_row]]))
    out.sort(key=lambda r: (-r.value_at_stake, r.label.lower(), r.key))
    return c.Heatmap(group_by=cmd.group_by.value, currency=await repo.reporting_currency(), rows=out[:cmd.rows],
                     unconverted_currencies=await repo.unconverted_currencies())


# ------------------------------------------------------------------------------------- attention


async def attention(session: AsyncSession, cmd: c.GetAttention) -> c.Attention:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    now = cmd.as_of or datetime.now(UTC)
    currency = await repo.reporting_currency()
    horizon = now + timedelta(days=settings.horizon_days)
    efforts = settings.efforts
    candidates: list[ranking.Candidate] = []
    for x in await repo.attention_candidates(horizon, cmd.owner):
        energy = domain.Energy(x.energy, x.last_touch_at, x.touches)
        score = domain.display(domain.strength(settings.strength, energy, now, c.Seniority(x.seniority)))
        candidates.append(ranking.Candidate(
            kind=c.ActionKind.touch, key=f"contact:{x.id}", owner=x.owner, title=f"Touch {x.name} ({x.org_name})",
            link=f"/contacts/{x.id}", stake=Decimal(x.stake).quantize(CENT),
            effort=efforts.crucial_touch if x.crucial else efforts.touch, crucial=x.crucial,
            score=score if x.last_touch_at else None, days_until_cold=domain.days_until(x.cold_at, now),
            last_touch_days=(now - x.last_touch_at).days if x.last_touch_at else None))
    deals = await repo.action_deadlines(horizon.date())
    values = await repo.deal_values([d.id for d in deals])
    for d in deals:
        assert d.ace_action_due_date is not None
        candidates.append(ranking.Candidate(
            kind=c.ActionKind.ace_action, key=f"deal:{d.id}", owner=d.owner, title=f"Answer AWS on {d.name}",
            link=f"/opportunities/{d.id}", stake=Decimal(values.get(d.id, 0)).quantize(CENT), effort=efforts.ace_action,
            due_in_days=(d.ace_action_due_date - now.date()).days, what="ACE Action Required"))
    rates = await repo.rates()
    for dl in await repo.open_deadlines(horizon.date()):
        stake = Decimal(0)
        if dl.amount_at_stake is not None and dl.currency in rates:
            stake = (dl.amount_at_stake * rates[dl.currency]).quantize(CENT)
        candidates.append(ranking.Candidate(
            kind=c.ActionKind.deadline, key=f"deadline:{dl.key}", owner=dl.owner, title=dl.title, link=dl.link,
            stake=stake, effort=efforts.deadline, due_in_days=(dl.due_date - now.date()).days,
            what=DEADLINE_WORDS.get(dl.kind, "Deadline")))
    if cmd.owner is not None:
        candidates = [x for x in candidates if x.owner == cmd.owner]
    capacities = await repo.capacities()
    owners = [cmd.owner] if cmd.owner is not None else list(cmd.members)
    ranked = ranking.rank(candidates)
    weeks = ranking.fill(ranked, owners, lambda o: capacities.get(o, settings.default_capacity_hours))
    position = {r.candidate.key: i + 1 for i, r in enumerate(ranked)}

    def item(r: ranking.Ranked, inside: bool) -> c.AttentionItem:
        x = r.candidate
        return c.AttentionItem(
            rank=position[x.key], kind=x.kind, owner=x.owner, title=x.title, link=x.link, priority=round(r.priority, 4),
            effort_hours=x.effort, value_at_stake=x.stake, within_capacity=inside, crucial=x.crucial, score=x.score,
            days_until_cold=x.days_until_cold, last_touch_days=x.last_touch_days, due_in_days=x.due_in_days,
            what=x.what,
            contact_id=uuid.UUID(x.key.split(":", 1)[1]) if x.kind == c.ActionKind.touch else None,
            opportunity_id=uuid.UUID(x.key.split(":", 1)[1]) if x.kind == c.ActionKind.ace_action else None,
            deadline_key=x.key.split(":", 1)[1] if x.kind == c.ActionKind.deadline else None)

    return c.Attention(as_of=now, currency=currency, members=[
        c.MemberWeek(owner=w.owner, capacity_hours=w.capacity, planned_hours=w.planned_hours,
                     items=[item(r, True) for r in w.planned],
                     outside=[item(r, False) for r in w.outside[:MAX_OUTSIDE]], outside_total=len(w.outside))
        for w in weeks])


# ----------------------------------------------------------------------------------------- health


async def health(session: AsyncSession, _cmd: c.GetRelationshipHealth) -> c.Health:
    repo = ContactRepository(session)
    settings = await settings_of(session)
    now = datetime.now(UTC)
    rows = _rows(await repo.all_for_map(False), settings.strength, now)
    counts = [0] * len(BANDS)
    for r in rows:
        counts[min(domain.display(r.score) // 20, 4)] += 1
    threshold = settings.strength.cold_threshold
    weak = await _weak_value(repo, rows, threshold)
    cooling_rows = sorted((r for r in rows if r.crucial and r.cold_at is not None
                           and r.cold_at - timedelta(days=settings.strength.warning_days) <= now),
                          key=lambda r: (r.cold_at, r.id))[:COOLING_ON_DASHBOARD]
    currency = await repo.reporting_currency()
    contacts = {x.id: x for x in await repo.many([r.id for r in cooling_rows])}
    stakes = {r.id: r.stake for r in cooling_rows}
    names = {r.id: r.org_name for r in cooling_rows}
    return c.Health(currency=currency, contacts=len(rows), distribution=list(zip(BANDS, counts, strict=True)),
                    crucial=sum(1 for r in rows if r.crucial),
                    crucial_cooling=[to_contract(contacts[r.id], names[r.id], stakes[r.id], settings, now, currency)
                                     for r in cooling_rows if r.id in contacts],
                    weak_value_at_stake=weak.quantize(CENT), cold_threshold=threshold)


async def _weak_value(repo: ContactRepository, rows: list[Row], threshold: int) -> Decimal:
    """Open pipeline whose best relationship is cold: a linked deal when none of its contacts is above
    the threshold; an organisation's unlinked deals when none of its contacts is (or it has none)."""
    score_of = {r.id: r.score for r in rows}
    best_by_deal: dict[uuid.UUID, tuple[float, Decimal]] = {}
    for contact_id, deal_id, value in await repo.open_deals_of_contacts():
        best = max(best_by_deal.get(deal_id, (0.0, Decimal(0)))[0], score_of.get(contact_id, 0.0))
        best_by_deal[deal_id] = (best, Decimal(value))
    weak = sum((v for best, v in best_by_deal.values() if domain.display(best) < threshold), Decimal(0))
    best_by_org: dict[uuid.UUID, float] = {}
    for r in rows:
        best_by_org[r.partner_id] = max(best_by_org.get(r.partner_id, 0.0), r.score)
    for partner_id, value in (await repo.unlinked_value_by_partner()).items():
        if partner_id is not None and domain.display(best_by_org.get(partner_id, 0.0)) < threshold:
            weak += Decimal(value)
    return weak
