"""Demo data, sent through the services' own commands so it takes the same path as real use."""

from __future__ import annotations

import logging

from contracts import pipeline as pc
from gateway.auth import Role
from gateway.users import ensure_user, new_password
from runtime import bus
from runtime.commands import send
from runtime.errors import CommandFailed
from runtime.settings import Settings

logger = logging.getLogger(__name__)

DEMO_PARTNERS: tuple[tuple[str, pc.PartnerType, pc.PartnerTier, str], ...] = (
    ("Amazon Web Services", pc.PartnerType.hyperscaler, pc.PartnerTier.platinum, "vp"),
    ("Google Cloud", pc.PartnerType.hyperscaler, pc.PartnerTier.gold, "vp"),
    ("Microsoft Azure", pc.PartnerType.hyperscaler, pc.PartnerTier.silver, "vp"),
    ("Snowflake", pc.PartnerType.isv, pc.PartnerTier.gold, "maria"),
    ("Datadog", pc.PartnerType.isv, pc.PartnerTier.gold, "maria"),
    ("HashiCorp", pc.PartnerType.isv, pc.PartnerTier.silver, "tom"),
    ("Elastic", pc.PartnerType.isv, pc.PartnerTier.silver, "tom"),
    ("MongoDB", pc.PartnerType.isv, pc.PartnerTier.platinum, "maria"),
    ("Confluent", pc.PartnerType.isv, pc.PartnerTier.bronze, "aisha"),
    ("Northwind Referrals", pc.PartnerType.referral, pc.PartnerTier.bronze, "aisha"),
    ("Contoso Managed Services", pc.PartnerType.msp, pc.PartnerTier.silver, "tom"),
)


DEMO_TEAM: tuple[tuple[str, str, Role], ...] = (
    ("vp@example.com", "Valentina (VP Strategic Partnerships)", Role.admin),
    ("maria@example.com", "Maria (partner manager)", Role.manager),
    ("tom@example.com", "Tom (partner manager)", Role.member),
    ("aisha@example.com", "Aisha (sales manager)", Role.member),
    ("board@example.com", "Board observer", Role.viewer),
)


async def seed_team(settings: Settings) -> list[str]:
    """Demo users; their passwords are printed once and kept in the data directory for the demo."""
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


async def seed(settings: Settings) -> int:
    await seed_team(settings)
    nc = await bus.connect(settings.nats_url, name="seed")
    created = 0
    try:
        for name, type_, tier, owner in DEMO_PARTNERS:
            try:
                await send(nc, pc.CreatePartner(name=name, type=type_, tier=tier, owner=owner,
                                                status=pc.PartnerStatus.active, actor="demo-seed"))
                created += 1
            except CommandFailed as exc:
                if exc.error.kind != "conflict":
                    raise
    finally:
        await nc.close()
    logger.info("demo seed: %d partners created", created)
    return created
