"""Each member's task due dates as an iCalendar feed their calendar app subscribes to. The feed's URL
carries a random secret (calendar apps cannot sign in); only its SHA-256 is stored, it is shown once when
made, a new one replaces the old (rotate) and revoking deletes it. The feed holds open tasks only."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import DateTime, ForeignKey, Text, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from contracts import week as w
from gateway.auth import digest
from gateway.models import User
from gateway.read_models.base import SCHEMA, Base
from gateway.state import bus, sessions
from runtime.commands import send

PREFIX = "pocal_"


class CalendarFeed(Base):
    __tablename__ = "calendar_feed"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.app_user.id", ondelete="CASCADE"),
                                               primary_key=True)
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class FeedInfo(BaseModel):
    exists: bool
    created_at: datetime | None = None
    url: str | None = None


async def feed_url(request: Request, user_id: str) -> FeedInfo:
    """Whether the user has a feed (its URL cannot be shown again: only its hash is kept)."""
    async with sessions(request)() as session:
        row = await session.get(CalendarFeed, uuid.UUID(user_id))
    return FeedInfo(exists=row is not None, created_at=row.created_at if row else None)


async def rotate(request: Request, user_id: str) -> FeedInfo:
    token = PREFIX + secrets.token_urlsafe(32)
    async with sessions(request)() as session, session.begin():
        stmt = insert(CalendarFeed).values(user_id=uuid.UUID(user_id), token_hash=digest(token))
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["user_id"], set_={"token_hash": stmt.excluded.token_hash, "created_at": func.now()}))
    base = str(request.base_url).rstrip("/")
    return FeedInfo(exists=True, created_at=datetime.now(UTC), url=f"{base}/calendar/{token}.ics")


async def revoke(request: Request, user_id: str) -> None:
    async with sessions(request)() as session, session.begin():
        await session.execute(delete(CalendarFeed).where(CalendarFeed.user_id == uuid.UUID(user_id)))


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n")
            .replace("\n", "\\n").replace("\r", "\\n"))


def _fold(line: str) -> list[str]:
    """RFC 5545: lines longer than 75 octets continue on the next line after a space."""
    out, current = [], ""
    for char in line:
        if len((current + char).encode()) > (75 if not out else 74):
            out.append(current)
            current = char
        else:
            current += char
    out.append(current)
    return [out[0]] + [" " + part for part in out[1:]]


def ical(tasks: list[w.Task], owner_name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//PartnerOps//Team week//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_escape('PartnerOps tasks — ' + owner_name)}"]
    for t in tasks:
        description = f"Carried over {t.carried} times. " if t.carried else ""
        if t.link is not None:
            description += f"About {t.link.kind.value} {t.link.label or t.link.id}."
        lines += ["BEGIN:VEVENT", f"UID:task-{t.id}@partnerops", f"DTSTAMP:{stamp}",
                  f"DTSTART;VALUE=DATE:{t.due_date:%Y%m%d}",
                  f"DTEND;VALUE=DATE:{t.due_date + timedelta(days=1):%Y%m%d}",
                  f"SUMMARY:{_escape(t.title)}", f"SEQUENCE:{t.version}"]
        if description:
            lines.append(f"DESCRIPTION:{_escape(description.strip())}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(part + "\r\n" for line in lines for part in _fold(line))


router = APIRouter(tags=["week"])


@router.get("/calendar/{token}.ics", response_class=Response,
            responses={200: {"content": {"text/calendar": {}}}, 404: {"description": "no such feed (revoked?)"}},
            summary="A member's open tasks as an iCalendar feed (the secret URL is its only credential)")
async def calendar(token: str = Path(max_length=100), *, request: Request) -> Response:
    if not token.startswith(PREFIX):
        raise HTTPException(status_code=404, detail="no such calendar feed")
    async with sessions(request)() as session:
        found = (await session.execute(
            select(User.id, User.name).join(CalendarFeed, CalendarFeed.user_id == User.id)
            .where(CalendarFeed.token_hash == digest(token), User.active))).first()
    if found is None:
        raise HTTPException(status_code=404, detail="no such calendar feed")
    # The feed's secret URL is the credential: the principal is the member it belongs to.
    principal = str(found.id)
    tasks: w.TaskList = await send(bus(request), w.ListTasks(owner=principal, status=w.TaskStatus.open,
                                                              limit=1000, actor=principal))
    return Response(ical(tasks.items, found.name), media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=300"})
