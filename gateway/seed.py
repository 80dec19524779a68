"""Demo data, sent through the services' own commands so it takes the same path as real use."""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS
from sqlalchemy import select

from contracts import pipeline as pc
from gateway import people
from gateway.auth import Role
from gateway.demo_commissions import seed_commissions
from gateway.demo_funding import seed_funding
from gateway.demo_pipeline import seed_pipeline
from gateway.demo_relationships import seed_relationships
from gateway.demo_week import seed_week
from gateway.models import User
from gateway.users import ensure_user, new_password
from runtime import bus
from runtime.commands import send
from runtime.db import create_engine, session_factory
from runtime.settings import Settings

logger = logging.getLogger(__name__)

DEMO_TEAM: tuple[tuple[str, str, Role], ...] = (
    ("vp@example.com", "Valentina (VP Strategic Partnerships)", Role.admin),
    ("maria@example.com", "Maria (partner manager)", Role.manager),
    ("tom@example.com", "Tom (partner manager)", Role.member),
    ("aisha@example.com", "Aisha (sales manager)", Role.member),
    ("board@example.com", "Board observer", Role.viewer),
)


def _production(settings: Settings) -> bool:
    # Demo accounts with passwords in a file are a way in; a production deployment never gets them.
    if settings.environment == "production":
        logger.warning("ENVIRONMENT=production: no demo users or demo data are seeded")
        return True
    return False


async def seed_team(settings: Settings) -> list[str]:
    """Demo users; their passwords are printed once and kept in the data directory for the demo."""
    if _production(settings):
        return []
    lines = []
    for email, name, role in DEMO_TEAM:
        password = new_password()
        if await ensure_user(settings, email=email, name=name, role=role, password=password):
            lines.append(f"{role.value:<8} {email:<22} {password}")
    if lines:
        creds = settings.data_dir / "demo-credentials.txt"
        creds.parent.mkdir(parents=True, exist_ok=True)
        creds.write_text("\n".join(lines) + "\n")
        creds.chmod(0o600)
        print("demo users (also in " + str(creds) + "):\n  " + "\n  ".join(lines), flush=True)
    return lines


# A person at one demo partner, to try the partner portal with (/portal): they see only Datadog's
# deals, registrations, tier and statements.
DEMO_PARTNER_USER = ("partner@example.com", "Dana (Datadog partner manager)", "Datadog")


async def seed_partner_user(settings: Settings, nc: NATS) -> None:
    email, name, organisation = DEMO_PARTNER_USER
    found: pc.PartnerList = await send(nc, pc.ListPartners(q=organisation, limit=1, actor="seed"))
    if not found.items:
        return
    password = new_password()
    if await ensure_user(settings, email=email, name=name, role=Role.partner, password=password,
                         partner_id=found.items[0].id):
        line = f"{Role.partner.value:<8} {email:<22} {password}"
        creds = settings.data_dir / "demo-credentials.txt"
        creds.parent.mkdir(parents=True, exist_ok=True)
        with creds.open("a") as out:
            out.write(line + "\n")
        creds.chmod(0o600)
        print(f"demo partner user ({organisation}, sees only the portal /portal):\n  {line}", flush=True)


async def _owner_ids(settings: Settings) -> dict[str, str]:
    """The demo's owner handles (maria, tom, ...) to the demo users' ids: deals are owned by user id."""
    engine = create_engine(settings.database_url, trace_sql=False)
    try:
        async with session_factory(engine)() as session:
            found = {}
            for email, _name, _role in DEMO_TEAM:
                user_id = await people.find_by_email(session, email)
                if user_id is not None:
                    found[email.split("@", 1)[0]] = str(user_id)
            return found
    finally:
        await engine.dispose()


async def _vp_zone(settings: Settings) -> str:
    """The team's time zone for the demo week: the VP's (the first demo user, the admin)."""
    engine = create_engine(settings.database_url, trace_sql=False)
    try:
        async with session_factory(engine)() as session:
            zone = await session.scalar(select(User.time_zone).where(User.email == DEMO_TEAM[0][0]))
            return zone or "UTC"
    finally:
        await engine.dispose()


async def seed(settings: Settings) -> int:
    if _production(settings):
        print("ENVIRONMENT=production: demo data not seeded", flush=True)
        return 0
    await seed_team(settings)
    owners = await _owner_ids(settings)
    nc = await bus.connect(settings.nats_url, name="seed")
    try:
        counts = await seed_pipeline(nc, owners=owners)
        await seed_partner_user(settings, nc)
        counts |= await seed_commissions(nc, owners=owners)
        names = {owners[email.split("@", 1)[0]]: name for email, name, _ in DEMO_TEAM
                 if email.split("@", 1)[0] in owners}
        counts |= await seed_week(nc, owners=owners, names=names, time_zone=await _vp_zone(settings))
        counts |= await seed_relationships(nc, owners=owners)
        counts |= await seed_funding(nc, owners=owners)
    finally:
        await nc.close()
    logger.info("demo seed: %s", counts)
    return counts["partners"]
