"""Team members as owners of deals and partners.

A deal or partner is owned by a user id (the `owner` field of the pipeline's contracts holds it as
text), never by a name or the part of an email before the @: two people named Tom, or an email
changed, must not move deals. People name an owner by email or id (API, CSV, forms); the gateway
turns that into the id before any command leaves it, and shows names (pages) and emails (CSV
exports) on the way out. Owners the pipeline received some other way (an older handle, a sync
worker's value) are shown as they are."""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
import uuid
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.base import CommandError, ErrorKind
from gateway.models import User
from gateway.state import sessions
from runtime.errors import CommandFailed
from runtime.single_flight import SingleFlight

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0


# Who may own a deal or a partner: members and up (a viewer cannot edit what they would own). The one
# rule behind the owner pickers on the pages, the API and the CSV import (`deal_owner_id`, `owner_problem`).
OWNING_ROLES = ("member", "manager", "admin")


@dataclass(frozen=True)
class Member:
    id: str
    email: str
    name: str
    active: bool
    role: str = "member"

    @property
    def may_own(self) -> bool:
        # A deactivated member keeps what they own until it is handed on (editing such a deal must still
        # work); the pickers offer only active people.
        return self.role in OWNING_ROLES


class Directory:
    """Every user by id and by email (lower case); a few hundred rows, refreshed every 30 s."""

    def __init__(self, members: list[Member]) -> None:
        self.by_id = {m.id: m for m in members}
        self.by_email = {m.email.lower(): m for m in members}
        self.loaded = time.monotonic()

    def find(self, value: str) -> Member | None:
        value = value.strip()
        return self.by_id.get(value.lower()) or self.by_email.get(value.lower())

    def name(self, owner: str | None) -> str:
        if not owner:
            return ""
        member = self.by_id.get(owner)
        return member.name if member else owner

    def email(self, owner: str) -> str:
        member = self.by_id.get(owner)
        return member.email if member else owner


async def load(session: AsyncSession) -> Directory:
    # Partner users own nothing and are nobody's colleague: the directory is the team's.
    rows = await session.execute(select(User.id, User.email, User.name, User.active, User.role)
                                 .where(User.role != "partner"))
    return Directory([Member(str(i), e, n, a, r) for i, e, n, a, r in rows])


async def directory(request: Request, *, fresh: bool = False) -> Directory:
    """The app's directory (kept on app.state), reloaded when older than REFRESH_SECONDS.

    `fresh`: loaded now, for a caller that must see every member added before it asked. Otherwise the
    first load is waited for, and a directory older than REFRESH_SECONDS is reloaded once, in the
    background, while requests go on with the one they have (it may be that old anyway): every
    request (16 at once under bench.kpi_read) found it stale and reloaded it, each with a session and
    a pool connection of its own, on its way to being answered."""
    state = request.app.state
    cached: Directory | None = getattr(state, "people", None)
    if fresh:
        return await _reload(request)
    if cached is None:
        return await asyncio.shield(_reloading(request))
    if time.monotonic() - cached.loaded > REFRESH_SECONDS:
        _reloading(request)
    return cached


async def _reload(request: Request) -> Directory:
    started = time.monotonic()
    async with sessions(request)() as session:
        loaded = await load(session)
    loaded.loaded = started  # as old as the moment it was read from
    current: Directory | None = getattr(request.app.state, "people", None)
    if current is None or current.loaded <= started:  # not over one read later (a fresh load meanwhile)
        request.app.state.people = loaded
    return loaded


def _reloading(request: Request) -> asyncio.Task[Directory]:
    """The app's reload under way, or a new one: one at a time."""
    state = request.app.state
    flights: SingleFlight[str, Directory] | None = getattr(state, "people_reloads", None)
    if flights is None:
        flights = state.people_reloads = SingleFlight(on_failure=_reload_failed)
    return flights.flight("people", lambda: _reload(request)).task


def _reload_failed(_key: str, error: BaseException) -> None:
    # The requests that waited for it (a first load) got the error; a background reload is tried
    # again by the next request.
    logger.warning("reloading the people directory failed", exc_info=error)


def name_for(request: Request | None, owner: str | None) -> str:
    """An owner's name for a page (the directory `require` refreshed for this request), else as stored."""
    cached: Directory | None = getattr(request.app.state, "people", None) if request is not None else None
    return cached.name(owner) if cached else (owner or "")


def unknown_owner_message(directory: Directory, value: str) -> str:
    """"'tomm' is not a team member; did you mean tom@example.com? …" — the nearest active member by
    email, the part of it before the @, or name, when one is close enough to be a typo."""
    typed = value.strip().lower()
    keys: dict[str, Member] = {}
    for m in directory.by_id.values():
        if m.active:
            for key in (m.email.lower(), m.email.lower().split("@", 1)[0], m.name.lower()):
                keys.setdefault(key, m)
    close = difflib.get_close_matches(typed, list(keys), n=1, cutoff=0.75)
    hint = f"did you mean {keys[close[0]].email}? " if close else ""
    return f"{value.strip()!r} is not a team member; {hint}give their email or user id"


def not_a_member(value: str, field: str = "owner", directory: Directory | None = None) -> CommandFailed:
    message = (unknown_owner_message(directory, value) if directory is not None
               else f"{value!r} is not a team member; give their email or user id")
    return CommandFailed(CommandError(kind=ErrorKind.invalid, field=field, message=message))


async def owner_id(request: Request, value: str | None, field: str = "owner") -> str | None:
    """The user id for an owner given by email or id; 422 (naming `field`) for anyone else."""
    if value is None or not value.strip():
        return None
    member = (await directory(request)).find(value) or (await directory(request, fresh=True)).find(value)
    if member is None:
        raise not_a_member(value, field, await directory(request))
    return member.id


def cannot_own_message(member: Member) -> str:
    return (f"{member.email} is a {member.role}: deals and partners are owned by members, managers and admins; "
            "pick another owner or ask an admin to change their role")


def owner_problem(directory: Directory, value: str) -> tuple[Member | None, str | None]:
    """The member a deal's or partner's owner names, or why it cannot be one (not a team member, a
    viewer): the rule the API, the pages and the CSV import share."""
    member = directory.find(value)
    if member is None:
        return None, unknown_owner_message(directory, value)
    if not member.may_own:
        return None, cannot_own_message(member)
    return member, None


async def deal_owner_id(request: Request, value: str | None, field: str = "owner") -> str | None:
    """The user id of a deal's or partner's owner given by email or id; 422 (naming `field`) for anyone
    who is not a team member, or is a viewer."""
    if value is None or not value.strip():
        return None
    directory_now = await directory(request)
    if directory_now.find(value) is None:
        directory_now = await directory(request, fresh=True)
    member, problem = owner_problem(directory_now, value)
    if member is None:
        raise CommandFailed(CommandError(kind=ErrorKind.invalid, field=field, message=problem or ""))
    return member.id


async def owner_filter(request: Request, value: str | None) -> str | None:
    """For filters: a team member named by email or id is their id; any other value is kept as it is
    (owners stored before deals were owned by id, or sent by a sync worker, can still be found)."""
    if value is None or not value.strip():
        return None
    member = (await directory(request)).find(value)
    return member.id if member else value.strip()


async def find_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    return await session.scalar(select(User.id).where(func.lower(User.email) == email.lower()))


def legacy_owner(members: list[Member], value: str) -> Member | None:
    """The one active member an owner stored before ownership by id stands for: their email, or the
    part of it before the @ (the old handle) when exactly one active member has it."""
    value = value.strip().lower()
    by_email = [m for m in members if m.email.lower() == value]
    if by_email:
        return by_email[0]
    by_handle = [m for m in members if m.active and m.email.lower().split("@", 1)[0] == value]
    return by_handle[0] if len(by_handle) == 1 else None
