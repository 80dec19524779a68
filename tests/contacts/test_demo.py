"""The demo's relationships, as planned (pure): 120+ AWS contacts across roles and territories, GCP and
Azure contacts, a year of touches, a few crucial contacts about to go cold."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime

from contracts.contacts import Seniority, StrengthSettings
from gateway.demo_relationships import SEED, people, touches
from services.relationships.contacts import domain

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OWNERS = {"maria": "u-maria", "tom": "u-tom", "aisha": "u-aisha", "vp": "u-vp"}


def test_the_demo_has_the_contacts_the_issue_asks_for():
    plan = people(OWNERS)
    by_org = Counter(p.org for p in plan)
    assert by_org["Amazon Web Services"] >= 120 and by_org["Google Cloud"] >= 15 and by_org["Microsoft Azure"] >= 10
    aws = [p for p in plan if p.org == "Amazon Web Services"]
    assert {p.role for p in aws} >= {"PDM", "PSM", "Account manager", "Solution architect", "ISV success"}
    assert len({p.territory for p in aws}) >= 10
    assert len({p.email for p in plan}) == len(plan)
    assert people(OWNERS) == plan  # deterministic


def test_a_year_of_touches_and_a_few_crucial_contacts_about_to_go_cold():
    settings = StrengthSettings()
    rng = random.Random(SEED + 1)
    cooling, spans = [], []
    for person in people(OWNERS):
        ts = touches(person, NOW, rng)
        if ts:
            spans.append((NOW - min(t for t, _, _ in ts)).days)
        energy = domain.fold(settings, [domain.Touch(t, k, i) for t, k, i in ts])
        days = domain.days_until(domain.cold_at(settings, energy, Seniority(person.seniority)), NOW)
        if person.crucial and days is not None and 0 <= days <= 14:
            cooling.append(person.name)
    assert max(spans) >= 330
    assert 3 <= len(cooling) <= 8, cooling
