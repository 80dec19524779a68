"""Sign-in throttling that slows an attacker without locking the real user out.

Every failed attempt is recorded under the email tried and the client's address group (an IPv4
address, or the /64 an IPv6 address belongs to: one machine holds a whole /64). After a few free
failures, each further one makes the next attempt from that address, or for that email, wait:
1 s, 2 s, 4 s, … up to a cap. Early attempts get 429 with Retry-After and cost no password hash.

The two caps differ on purpose. An address belongs to the attacker, so its wait grows to
15 minutes. An email belongs to the victim too, so its wait stops at 30 seconds: a password-guessing
run against one account is slowed to two guesses a minute, and the real user, at worst, waits
half a minute. A browser that has signed in to the account before carries a signed "known device"
cookie and skips the email's wait altogether (its address's own wait still applies), as OWASP
recommends for exactly this trade-off.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.models import SigninAttempt

WINDOW = timedelta(hours=1)
FREE_FAILURES = 5
ADDRESS_MAX_DELAY = 15 * 60
EMAIL_MAX_DELAY = 30
DEVICE_COOKIE = "po_device"
DEVICE_LIFETIME = timedelta(days=365)


def clock() -> datetime:
    """The throttle's one clock: failures are stamped and waits measured by it (tests stop it, so a
    wait never runs out just because the machine is slow)."""
    return datetime.now(UTC)


def client_key(host: str | None) -> str:
    """What failures are counted under for this client address."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def delay_after(failures: int, cap: int) -> int:
    """Seconds the next attempt waits after `failures` recent failures."""
    if failures < FREE_FAILURES:
        return 0
    return min(cap, 2 ** min(failures - FREE_FAILURES, 20))


async def _pressure(session: AsyncSession, column: object, value: str, since: datetime) -> tuple[int, datetime | None]:
    count, last = (await session.execute(
        select(func.count(), func.max(SigninAttempt.at)).where(column == value, SigninAttempt.at > since)  # type: ignore[arg-type]
    )).one()
    return int(count or 0), last


async def wait_seconds(session: AsyncSession, email: str, client: str, *, known_device: bool,
                       now: datetime | None = None) -> int:
    """0 to go ahead; otherwise how long this attempt must wait."""
    now = now or clock()
    since = now - WINDOW
    keys = [(SigninAttempt.client, client, ADDRESS_MAX_DELAY)]
    if not known_device:
        keys.append((SigninAttempt.email, email.lower(), EMAIL_MAX_DELAY))
    wait = 0.0
    for column, value, cap in keys:
        failures, last = await _pressure(session, column, value, since)
        if last is not None:
            wait = max(wait, delay_after(failures, cap) - (now - last).total_seconds())
    return max(0, int(wait + 0.999))


def record_failure(session: AsyncSession, email: str, client: str, at: datetime | None = None) -> None:
    session.add(SigninAttempt(email=email.lower()[:320], client=client, at=at or clock()))


def device_cookie(secret: str, user_id: uuid.UUID) -> str:
    mac = hmac.new(secret.encode(), f"device:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"{user_id}.{mac}"


def is_known_device(secret: str, cookie: str | None, user_id: uuid.UUID | None) -> bool:
    if not cookie or user_id is None:
        return False
    return hmac.compare_digest(cookie, device_cookie(secret, user_id))
