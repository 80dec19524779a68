"""The hourly housekeeping tick (contracts/schedules.py), consumed by the gateway like any event: it
purges what the gateway keeps only for a while — sessions past their expiry, password-reset links
expired or used, sign-in attempts older than the throttle needs — and sends the notifications service
the directory again."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import schedules
from contracts.base import Event
from gateway import directory_sync
from gateway.models import PasswordReset, SigninAttempt, UserSession
from gateway.signin_throttle import WINDOW
from runtime.inbox import Subscription

logger = logging.getLogger(__name__)

# Sign-in attempts count for throttling within WINDOW (an hour); a day is kept to read an attack from.
ATTEMPTS_KEPT = max(WINDOW, timedelta(days=1))
USED_RESETS_KEPT = timedelta(days=1)


async def on_housekeeping_due(session: AsyncSession, event: Event) -> None:
    at = event.occurred_at
    sessions = await session.execute(delete(UserSession).where(UserSession.expires_at < at))
    resets = await session.execute(delete(PasswordReset).where(or_(
        PasswordReset.expires_at < at, PasswordReset.used_at < at - USED_RESETS_KEPT)))
    attempts = await session.execute(delete(SigninAttempt).where(SigninAttempt.at < at - ATTEMPTS_KEPT))
    logger.info("housekeeping: purged %d expired sessions, %d password resets, %d sign-in attempts",
                sessions.rowcount, resets.rowcount, attempts.rowcount)  # type: ignore[attr-defined]
    directory_sync.changed()


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(consumer="gateway", models=(schedules.HousekeepingDueV1,), handle=on_housekeeping_due),
)
