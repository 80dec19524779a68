"""Demo relationships: 130 AWS contacts across roles and territories, Google Cloud and Azure contacts, a
few at the ISVs, a year of meetings, calls and emails with them, and a few crucial contacts about to go
cold — sent as the relationships service's own commands, so they take the path real use takes.

Deterministic and relative to today. Seeding twice changes nothing: a contact is matched by its email
at the organisation (conflict → skipped) and each touch carries a calendar-style uid (logged once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NATS

from contracts import contacts as cc
from contracts import pipeline as pc
from runtime.commands import send
from runtime.errors import CommandFailed

logger = logging.getLogger(__name__)
ACTOR = "demo-seed"
SEED = 12
# Commands the seed keeps in flight at once.
SEED_CONCURRENCY = 16

FIRST = ("Alex", "Priya", "Jordan", "Wei", "Sofia", "Marcus", "Aiko", "Daniel", "Fatima", "Lucas", "Maya", "Omar",
         "Hannah", "Ravi", "Elena", "Tomás", "Grace", "Kenji", "Amara", "Noah", "Chloe", "Diego", "Ingrid", "Samir",
         "Zoe", "Mateo", "Leila", "Ben", "Yuki", "Nadia")
LAST = ("Nguyen", "Patel", "Schmidt", "Okafor", "Garcia", "Kim", "Rossi", "Johansson", "Haddad", "Silva", "Chen",
        "Novak", "Brennan", "Iyer", "Dubois", "Tanaka", "Mensah", "Kowalski", "Levi", "Moreau")
AWS_ROLES = (("PDM", 30), ("PSM", 18), ("Account manager", 34), ("Solution architect", 30), ("ISV success", 8),
             ("Marketplace", 5), ("Executive sponsor", 5))
AWS_TERRITORIES = ("US West", "US East", "US Central", "Canada", "UK & Ireland", "DACH", "France", "Nordics",
                   "ANZ", "Japan", "India", "LATAM")
SEGMENTS = ("Enterprise", "Strategic", "ISV", "SMB", "Public sector")
GCP_ROLES = (("Partner manager", "PDM"), ("Customer engineer", "Solution architect"),
             ("Account executive", "Account manager"), ("Partner engineer", "Solution architect"))
AZURE_ROLES = (("Partner development manager", "PDM"), ("Cloud solution architect", "Solution architect"),
               ("Account executive", "Account manager"))
# Meetings matter most; most touches are emails and calls.
KINDS = ((cc.InteractionKind.email, 45), (cc.InteractionKind.call, 25), (cc.InteractionKind.meeting, 20),
         (cc.InteractionKind.message, 7), (cc.InteractionKind.event, 3))


@dataclass(frozen=True)
class Person:
    org: str
    name: str
    email: str
    role: str
    title: str | None
    territory: str
    segment: str
    seniority: cc.Seniority
    owner: str | None
    crucial: bool
    rhythm_days: int | None  # how often we touch them (None: hardly ever)
    last_days_ago: int       # when the latest touch was


def _weighted(rng: random.Random, table: tuple[tuple[object, int], ...]) -> object:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _email(name: str, domain: str, taken: set[str]) -> str:
    base = name.lower().replace(" ", ".").replace("á", "a").replace("é", "e")
    email, n = f"{base}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{base}{n}@{domain}"
    taken.add(email)
    return email


def people(owners: Mapping[str, str]) -> list[Person]:
    rng = random.Random(SEED)
    team = [owners[h] for h in ("maria", "tom", "aisha", "vp") if h in owners] or [None]
    taken: set[str] = set()
    out: list[Person] = []

    def add(org: str, domain: str, role: str, title: str | None, territory: str, *, crucial: bool = False,
            seniority: cc.Seniority | None = None, rhythm: int | None = None, last: int | None = None) -> None:
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        seniority = seniority or rng.choices(list(cc.Seniority), weights=[5, 15, 45, 35])[0]
        rhythm = rhythm if rhythm is not None else rng.choice((14, 21, 30, 45, 60, 90, 120, None))
        out.append(Person(org=org, name=name, email=_email(name, domain, taken), role=role, title=title,
                          territory=territory, segment=rng.choice(SEGMENTS), seniority=seniority,
                          owner=rng.choice(team), crucial=crucial, rhythm_days=rhythm,
                          last_days_ago=last if last is not None else rng.randint(0, (rhythm or 200) + 30)))

    for role, count in AWS_ROLES:
        for _ in range(count):
            add("Amazon Web Services", "amazon.example", role, None, rng.choice(AWS_TERRITORIES),
                seniority=cc.Seniority.executive if role == "Executive sponsor" else None)
    # Crucial AWS relationships: most are healthy, a few are about to go cold (last touch 36-42 days ago).
    for i in range(10):
        add("Amazon Web Services", "amazon.example", "PDM" if i % 2 else "Account manager", None,
            AWS_TERRITORIES[i], crucial=True, seniority=cc.Seniority.director if i >= 4 else cc.Seniority.manager,
            rhythm=21 if i >= 4 else 90, last=[38, 40, 42, 36][i] if i < 4 else rng.randint(0, 10))
    for title, role in GCP_ROLES * 5:
        add("Google Cloud", "google.example", role, title, rng.choice(("US West", "US East", "EMEA", "APAC")))
    add("Google Cloud", "google.example", "PDM", "Partner manager", "US West", crucial=True, rhythm=90, last=39,
        seniority=cc.Seniority.manager)
    for title, role in AZURE_ROLES * 4:
        add("Microsoft Azure", "microsoft.example", role, title, rng.choice(("US", "EMEA", "APAC")))
    for org in ("Snowflake", "Datadog", "MongoDB", "Databricks", "CrowdStrike"):
        domain = org.lower().replace(" ", "") + ".example"
        add(org, domain, "Alliance lead", "Alliances director", "Global", crucial=org == "Snowflake",
            seniority=cc.Seniority.director, rhythm=14, last=3)
        add(org, domain, "Partner sales", "Partner sales manager", "US")
    return out


def touches(person: Person, now: datetime, rng: random.Random) -> list[tuple[datetime, cc.InteractionKind,
                                                                            cc.Initiator]]:
    """A year of touches at the person's rhythm, the latest `last_days_ago` days ago."""
    if person.rhythm_days is None:
        return [(now - timedelta(days=person.last_days_ago, hours=rng.randint(0, 8)), cc.InteractionKind.email,
                 cc.Initiator.us)] if rng.random() < 0.5 else []
    out = []
    day = person.last_days_ago
    # The crucial contacts the demo shows cooling: last seen in a meeting five to six weeks ago.
    cooling = person.crucial and person.last_days_ago >= 30
    while day <= 365:
        kind = _weighted(rng, KINDS)
        if cooling:
            kind = cc.InteractionKind.meeting if day == person.last_days_ago else cc.InteractionKind.email
        initiator = cc.Initiator.them if rng.random() < 0.35 else cc.Initiator.us
        out.append((now - timedelta(days=day, hours=rng.randint(0, 8)), kind, initiator))
        day += max(3, int(person.rhythm_days * rng.uniform(0.6, 1.4)))
    return out  # type: ignore[return-value]


async def _organisations(nc: NATS, names: set[str]) -> dict[str, uuid.UUID]:
    listing: pc.PartnerList = await send(nc, pc.ListPartners(limit=500, actor=ACTOR))
    return {p.name: p.id for p in listing.items if p.name in names}


async def _create(nc: NATS, command: cc.CreateContact, timeout: float = 60) -> uuid.UUID | None:
    """Create a contact; None when it exists already. The relationships service learns of partners from
    the pipeline's events, so right after the pipeline's seed an organisation may be unknown for a
    moment: retried until it is known."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            made: cc.Contact = await send(nc, command)
            return made.id
        except CommandFailed as exc:
            if exc.error.kind == "conflict":
                return None
            if exc.error.field != "partner_id" or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


async def seed_relationships(nc: NATS, *, owners: Mapping[str, str], now: datetime | None = None) -> dict[str, int]:
    now = now or datetime.now(UTC)
    plan = people(owners)
    orgs = await _organisations(nc, {p.org for p in plan})
    if not orgs:
        return {"contacts": 0, "interactions": 0}
    # Several commands in flight (the service answers up to 32 at once), but a contact's touches one after
    # another, oldest first: they lock the same contact row, so in flight together they would only queue.
    slots = asyncio.Semaphore(SEED_CONCURRENCY)
    ids: dict[str, uuid.UUID] = {}

    async def create(person: Person) -> None:
        async with slots:
            made = await _create(nc, cc.CreateContact(
                partner_id=orgs[person.org], name=person.name, email=person.email, role=person.role,
                title=person.title, territory=person.territory, segment=person.segment, seniority=person.seniority,
                owner=person.owner, crucial=person.crucial, actor=ACTOR))
        if made is not None:
            ids[person.email] = made

    await asyncio.gather(*(create(p) for p in plan if p.org in orgs))
    rng = random.Random(SEED + 1)
    jobs: list[list[cc.LogInteraction]] = []
    for person in plan:  # in the plan's order, so the random touches are the same whatever was created now
        contact_id = ids.get(person.email)
        if contact_id is None:
            continue
        jobs.append([cc.LogInteraction(kind=kind, occurred_at=at, contact_ids=(contact_id,), initiated_by=initiator,
                                       note=None, uid=f"demo:{person.email}:{n}", actor=ACTOR)
                     for n, (at, kind, initiator) in enumerate(touches(person, now, rng))])
    logged = 0

    async def one(command: cc.LogInteraction) -> None:
        nonlocal logged
        try:
            await send(nc, command)
            logged += 1
        except CommandFailed as exc:
            if exc.error.kind != "conflict":
                raise

    async def contact(commands: list[cc.LogInteraction]) -> None:
        async with slots:
            for command in commands:
                await one(command)

    await asyncio.gather(*(contact(j) for j in jobs))
    for handle, hours in (("maria", "6"), ("tom", "4"), ("aisha", "3"), ("vp", "2")):
        if handle in owners:
            await send(nc, cc.SetCapacity(owner=owners[handle], hours_per_week=hours, actor=ACTOR))
    logger.info("demo relationships: %d contacts, %d interactions", len(ids), logged)
    return {"contacts": len(ids), "interactions": logged}
