"""Who is asking, and may they: users with roles (password sign-in, session cookie, CSRF token)
and scoped API tokens for integrations.

Every route declares what it needs with `Depends(require(role, scope))`. Users are checked by role
(admin > manager > member > viewer); API tokens by scope only, since they belong to no person.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

import asyncpg
from fastapi import HTTPException, Request
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import passwords, people
from gateway.models import ApiToken, PasswordReset, User, UserSession
from gateway.state import running
from runtime.db import DriverConnection, driver_connection

SESSION_COOKIE = "po_session"
PRE_CSRF_COOKIE = "po_csrf"
SESSION_LIFETIME = timedelta(days=7)
DEFAULT_IDLE = timedelta(minutes=120)
# Last-seen / last-used times are written at most this often, so most requests check a session or a
# token with one indexed read and no write.
TOUCH_EVERY = timedelta(minutes=1)
RESET_LIFETIME = timedelta(hours=24)
TOKEN_PREFIX = "po_"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

SCOPES: dict[str, str] = {
    "kpis:read": "read the dashboard's KPIs",
    "search:read": "search partners, deals and contacts (what the search page finds)",
    "partners:read": "read partners",
    "partners:write": "create and change partners",
    "opportunities:read": "read opportunities and forecasts",
    "opportunities:write": "create and move opportunities",
    "pipeline:configure": "define pipelines and their stages; change the pipeline settings (target, fiscal year, "
                          "tiers, exchange rates)",
    "events:publish": "publish external opportunity events (sync workers)",
    "commissions:read": "read agreements, ledgers and statements",
    "commissions:write": "edit agreements and enter revenue events",
    "commissions:approve": "approve and pay ledger entries",
    "funding:read": "read funding programs, fund requests, goals and competencies",
    "funding:write": "create and move fund requests, goals and competencies",
    "funding:configure": "configure funding programs",
    "week:read": "read meetings, updates and tasks",
    "week:write": "create and change tasks",
    "relationships:read": "read contacts, interactions, the heatmap and the attention list",
    "relationships:write": "add contacts, log interactions, import contacts and calendars",
    "relationships:admin": "change how relationship strength is computed; run the cooling scan",
    "metrics:read": "scrape /metrics (Prometheus)",
    "sync:read": "read the health of the AWS and Google Cloud syncs",
}

class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    member = "member"
    viewer = "viewer"
    # A person at a partner organisation: below every team role, so every team route refuses them;
    # they reach only the portal (gateway/routes/portal.py), scoped to their own partner.
    partner = "partner"

    @property
    def rank(self) -> int:
        return {"partner": -1, "viewer": 0, "member": 1, "manager": 2, "admin": 3}[self.value]


# The team's roles (everyone but partner users): who owns deals, gets digests, sits in the meeting.
STAFF_ROLES: tuple[Role, ...] = (Role.viewer, Role.member, Role.manager, Role.admin)


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    role: Role
    kind: Literal["user", "token"]
    scopes: frozenset[str] = frozenset()
    csrf_token: str | None = None
    time_zone: str = "UTC"
    # Set for (and only for) partner users: the one organisation whose data they may see.
    partner_id: uuid.UUID | None = None


def may_remove(principal: Principal, owner: str | None, what: str) -> None:
    """Deleting or restoring a deal or partner (and archiving a partner): its owner, a manager or an admin;
    a record nobody owns is the team's (any member). Raises 403 naming the rule otherwise."""
    # An API token reached here holding the write scope an admin granted it: it acts for the team.
    if principal.kind == "token" or principal.role.rank >= Role.manager.rank or owner is None or owner == principal.id:
        return
    raise HTTPException(403, detail=f"only the {what}'s owner, a manager or an admin may delete or restore it")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_password(password: str, email: str | None = None) -> str | None:
    return passwords.weakness(password, email)


class AuthRequired(HTTPException):
    """401 for the API; the web pages turn it into a redirect to the sign-in page."""

    def __init__(self) -> None:
        super().__init__(status_code=401, detail="sign in or send an API token",
                         headers={"WWW-Authenticate": "Bearer"})


def _idle(request: Request) -> timedelta:
    settings = getattr(request.app.state, "settings", None)
    return timedelta(minutes=settings.gateway_session_idle_minutes) if settings else DEFAULT_IDLE


_TOKENS, _SESSIONS, _USERS = ApiToken.__table__.fullname, UserSession.__table__.fullname, User.__table__.fullname
# The look-ups and the touches, as asyncpg runs them (runtime.db.driver_connection says why not through
# SQLAlchemy): the checks are those of the models' columns, spelled out.
_TOKEN = (f"SELECT id, name, scopes, last_used_at FROM {_TOKENS} "
          "WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2")
_TOUCH_TOKEN = f"UPDATE {_TOKENS} SET last_used_at = $2 WHERE id = $1"
_SESSION = (f"SELECT s.token_hash, s.csrf_token, s.last_seen_at, u.id, u.email, u.role, u.time_zone, u.partner_id "
            f"FROM {_SESSIONS} s JOIN {_USERS} u ON u.id = s.user_id "
            "WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.active")
_TOUCH_SESSION = f"UPDATE {_SESSIONS} SET last_seen_at = $2 WHERE token_hash = $1"


def _uuid(value: uuid.UUID | None) -> uuid.UUID | None:
    # asyncpg's UUIDs are a subclass of its own; the rest of the gateway gets the standard type.
    return None if value is None else uuid.UUID(bytes=value.bytes)


async def authenticate(request: Request, conn: asyncpg.Connection) -> Principal | None:
    """The verified caller, or None without credentials. `conn` is outside any transaction: the
    look-up is one statement, and the rare last-used/last-seen touch (at most once a minute per token
    or session) is a statement of its own."""
    now = datetime.now(UTC)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        row = await conn.fetchrow(_TOKEN, digest(token), now)
        if row is None:
            raise HTTPException(status_code=401, detail="unknown, expired or revoked API token",
                                headers={"WWW-Authenticate": "Bearer"})
        if row["last_used_at"] is None or now - row["last_used_at"] >= TOUCH_EVERY:
            await conn.execute(_TOUCH_TOKEN, row["id"], now)
        return Principal(id=str(row["id"]), name=f"token:{row['name']}", role=Role.viewer, kind="token",
                         scopes=frozenset(row["scopes"]))
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    found = await conn.fetchrow(_SESSION, digest(cookie), now, now - _idle(request))
    if found is None:
        return None
    if now - found["last_seen_at"] >= TOUCH_EVERY:
        await conn.execute(_TOUCH_SESSION, found["token_hash"], now)
    return Principal(id=str(found["id"]), name=found["email"], role=Role(found["role"]), kind="user",
                     csrf_token=found["csrf_token"], time_zone=found["time_zone"],
                     partner_id=_uuid(found["partner_id"]))


async def _authenticate(request: Request) -> Principal | None:
    async with driver_connection(running(request).engine) as conn:
        return await authenticate(request, conn.driver)


def lent_connection(request: Request) -> asyncpg.Connection:
    """The connection the caller was checked on, for a route whose requirement lends it
    (`require(..., lend_connection=True)`)."""
    lent: DriverConnection | None = getattr(request.state, "lent_connection", None)
    if lent is None:
        raise RuntimeError("no connection lent: require(..., lend_connection=True), and not given back")
    return lent.driver


async def give_back_connection(request: Request) -> None:
    """Return the lent connection to the pool now: before taking others (a request holding two at
    once, many requests at once, can starve the pool)."""
    lent: DriverConnection | None = getattr(request.state, "lent_connection", None)
    request.state.lent_connection = None
    if lent is not None:
        await lent.give_back()


async def check_csrf(request: Request, principal: Principal) -> None:
    """Cookie-authenticated state changes must echo the session's CSRF token (header or form field)."""
    if principal.kind != "user" or request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


def require(role: Role = Role.viewer, scope: str | None = None, *, partners: bool = False,
            lend_connection: bool = False) -> Callable[..., Any]:
    """A dependency: the caller must be a user of at least `role`, or a token holding `scope`.
    A route without a scope cannot be reached with a token. `partners`: partner users may call it
    too (only routes about the caller's own account: sign out, password, time zone).
    `lend_connection`: the connection the caller was checked on stays checked out for the route
    (`lent_connection(request)`) until the response is sent, so a route that answers from a quick
    read or two (the kept KPIs) takes one connection per request, not two; not for routes that wait
    on a service meanwhile (`give_back_connection` before taking another)."""
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def admit(request: Request, principal: Principal | None) -> Principal:
        if principal is None:
            raise AuthRequired()
        # Known from here on, even if refused below: a refusal page still shows who is signed in.
        request.state.principal = principal
        if principal.kind == "token":
            if scope is None or scope not in principal.scopes:
                raise HTTPException(status_code=403, detail=f"this token lacks the scope {scope or '(user only)'}")
        elif principal.role is Role.partner:
            if not partners:
                raise HTTPException(status_code=403, detail="partner users see only the partner portal (/portal)")
        elif principal.role.rank < role.rank:
            raise HTTPException(status_code=403, detail=f"needs the {role.value} role or higher")
        await check_csrf(request, principal)
        return principal

    async def dependency(request: Request) -> Principal:
        principal = await _authenticate(request)
        if principal is not None:
            await people.directory(request)  # owners' names for the pages; reloaded every 30 s
        return await admit(request, principal)

    async def lending(request: Request) -> AsyncIterator[Principal]:
        # The directory's first load takes a connection of its own (its reloads run in the background):
        # before this one is checked out, so that a request never holds two (as many requests at once as
        # the pool has connections, each holding one and waiting for another, would starve it).
        await people.directory(request)
        async with driver_connection(running(request).engine) as conn:
            principal = await admit(request, await authenticate(request, conn.driver))
            request.state.lent_connection = conn
            try:
                yield principal
            finally:
                request.state.lent_connection = None

    chosen: Callable[..., Any] = lending if lend_connection else dependency
    chosen.required_role = role  # type: ignore[attr-defined]
    chosen.required_scope = scope  # type: ignore[attr-defined]
    chosen.partners_allowed = partners  # type: ignore[attr-defined]
    return chosen


def require_partner() -> Callable[[Request], Awaitable[Principal]]:
    """A dependency for the partner portal: a signed-in partner user bound to a partner organisation.
    Team members and API tokens are refused: the portal is the partner's view, and every read in it
    is scoped to `principal.partner_id`, never to an id the request names."""

    async def dependency(request: Request) -> Principal:
        principal = await _authenticate(request)
        if principal is None:
            raise AuthRequired()
        request.state.principal = principal
        if principal.kind != "user" or principal.role is not Role.partner or principal.partner_id is None:
            raise HTTPException(status_code=403, detail="the partner portal is for partner users")
        await people.directory(request)  # the team's names (a partner's contact, a step's owner), as require does
        await check_csrf(request, principal)
        return principal

    dependency.required_role = Role.partner  # type: ignore[attr-defined]
    dependency.required_scope = None  # type: ignore[attr-defined]
    dependency.partners_allowed = True  # type: ignore[attr-defined]
    return dependency


async def optional_principal(request: Request) -> Principal | None:
    return await _authenticate(request)


async def find_user(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower(), User.active))


async def check_password(user: User | None, password: str) -> bool:
    # Verify against a dummy hash when the user is unknown so timing does not reveal who exists.
    ok = await passwords.verify_password(user.password_hash if user else await _dummy_hash(), password)
    return ok and user is not None


async def open_session(session: AsyncSession, user: User) -> tuple[str, str]:
    """A new session for a user whose password was checked; returns its cookie value and CSRF token."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=digest(token), user_id=user.id, csrf_token=csrf,
                            expires_at=datetime.now(UTC) + SESSION_LIFETIME))
    return token, csrf


async def end_other_sessions(session: AsyncSession, user_id: uuid.UUID, keep_cookie: str | None) -> None:
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep_cookie:
        query = query.where(UserSession.token_hash != digest(keep_cookie))
    await session.execute(query)


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    await session.execute(update(User).where(User.id == user.id)
                          .values(password_hash=await passwords.hash_password(password)))


async def issue_reset(session: AsyncSession, user: User, actor: str) -> str:
    """A single-use reset link's secret, valid for RESET_LIFETIME; earlier unused links stop working."""
    await session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id,
                                                      PasswordReset.used_at.is_(None)))
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(token_hash=digest(token), user_id=user.id, created_by=actor,
                              expires_at=datetime.now(UTC) + RESET_LIFETIME))
    return token


async def pending_reset(session: AsyncSession, token: str, *, lock: bool = False) -> tuple[PasswordReset, User] | None:
    query = (select(PasswordReset, User).join(User, User.id == PasswordReset.user_id)
             .where(PasswordReset.token_hash == digest(token), PasswordReset.used_at.is_(None),
                    PasswordReset.expires_at > func.now(), User.active))
    found = (await session.execute(query.with_for_update(of=PasswordReset) if lock else query)).first()
    return None if found is None else (found[0], found[1])


async def sign_out(session: AsyncSession, token: str) -> None:
    await session.execute(delete(UserSession).where(UserSession.token_hash == digest(token)))


async def create_user(session: AsyncSession, *, email: str, name: str, role: Role, password: str,
                      partner_id: uuid.UUID | None = None) -> User:
    """`partner_id`: required for the partner role, refused for the others (a database check too)."""
    if (role is Role.partner) != (partner_id is not None):
        raise ValueError("a partner user needs its partner organisation, and only a partner user has one")
    user = User(email=email.strip(), name=name.strip() or email, role=role.value, partner_id=partner_id,
                password_hash=await passwords.hash_password(password))
    session.add(user)
    await session.flush()
    return user


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


# One per hasher (passwords.configure may change it), so an unknown user's check costs what a known one's does.
# Made at the first need, not at import: a strong hash is ~0.3 s of CPU, which every process importing this
# module (the gateway, every gateway replica a rolling restart starts, each test run) paid at start.
_dummy_hashes: dict[int, str] = {}


async def _dummy_hash() -> str:
    key = id(passwords.hasher)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = await passwords.hash_password(secrets.token_urlsafe(16))
    return _dummy_hashes[key]
