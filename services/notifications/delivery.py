"""The email sender: takes due emails from the delivery table and hands them to the SMTP server.

Each email is claimed with FOR UPDATE SKIP LOCKED inside its own transaction and marked sent or
failed in the same one, so two service processes never send the same email, and a server that
refuses (a 4xx, a connection error) is tried again with a backoff until `SMTP_MAX_ATTEMPTS`; then
the email is marked failed with the last error, for an admin to see and retry. A 5xx refusal is
final at once. Nothing is dropped silently. (A crash between the server's acceptance and the commit
can send an email twice; the Message-ID is the delivery id, so mail clients fold such a copy.)

It polls for due emails (SMTP_POLL_SECONDS) like the outbox relay: this is a work queue, not a
schedule; periodic work is triggered by the bus (contracts/schedules.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from runtime.failures import describe
from runtime.service import RunningService
from runtime.settings import Settings
from services.notifications import emails
from services.notifications.domain import backoff
from services.notifications.models import EmailDelivery
from services.notifications.repository import DeliveryRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://user:password@host:587 or smtps://host:465")
        tls = parts.scheme == "smtps"
        return cls(hostname=parts.hostname, port=parts.port or (465 if tls else 25),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None, use_tls=tls)

    def options(self) -> dict[str, Any]:
        # start_tls=None: upgrade when the server offers STARTTLS (a local sink does not).
        return {"hostname": self.hostname, "port": self.port, "username": self.username,
                "password": self.password, "use_tls": self.use_tls, "start_tls": None, "timeout": 30}


def message(d: EmailDelivery, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = d.to
    msg["Subject"] = d.subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=str(d.id), domain="partnerops")
    msg["X-PartnerOps-Delivery"] = str(d.id)
    msg.set_content(d.body_text)
    if d.body_html:
        msg.add_alternative(d.body_html, subtype="html")
        html = msg.get_payload()[1]  # type: ignore[index]
        for cid, data in (d.images or {}).items():
            html.add_related(base64.b64decode(data), maintype="image", subtype="png", cid=f"<{cid}>",
                             filename=f"{cid}.png", disposition="inline")
    return msg


def _final(exc: BaseException) -> bool:
    """A refusal that will not change by waiting (5xx: no such mailbox, message refused)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code >= 500


async def send_one(sessions: async_sessionmaker[AsyncSession], server: SmtpServer, settings: Settings) -> bool:
    """Send the next due email, if any; True when there was one (sent or not)."""
    async with sessions() as session, session.begin():
        d = await DeliveryRepository(session).claim_due(datetime.now(UTC))
        if d is None:
            return False
        d.attempts += 1
        try:
            await aiosmtplib.send(message(d, settings.mail_from), **server.options())
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            d.last_error = describe(exc)[:1000]
            if _final(exc) or d.attempts >= settings.smtp_max_attempts:
                d.status, d.next_attempt_at = "failed", None
                logger.error("email %s to a %s recipient failed for good after %d attempt(s): %s", d.id, d.kind,
                             d.attempts, d.last_error)
            else:
                d.next_attempt_at = datetime.now(UTC) + backoff(d.attempts, settings.smtp_backoff_seconds)
                logger.warning("email %s not accepted (attempt %d), trying again at %s: %s", d.id, d.attempts,
                               d.next_attempt_at.isoformat(timespec="seconds"), d.last_error)
        else:
            d.status, d.sent_at, d.last_error, d.next_attempt_at = "sent", datetime.now(UTC), None, None
        return True


async def sender(running: RunningService) -> None:
    """The service's worker: sends due emails until the service stops."""
    settings = running.settings
    emails.configure(settings.public_url)
    if not settings.smtp_url:
        logger.warning("SMTP_URL is not set: alerts reach the in-app feed; emails wait as pending")
        await running.stop.wait()
        return
    server = SmtpServer.parse(settings.smtp_url)
    while not running.stop.is_set():
        try:
            busy = await send_one(running.sessions, server, settings)
        except Exception as exc:  # the database away: wait and try again, never end the worker
            logger.warning("email sender: %s", describe(exc))
            busy = False
        if not busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(running.stop.wait(), timeout=settings.smtp_poll_seconds)
