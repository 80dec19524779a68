"""Users, API tokens, the audit log and the signed-in user (admin-only except /api/me)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import pipeline as pc
from contracts.fields import RowId, line
from gateway import audit, auth, directory_sync
from gateway import signin as signing
from gateway.auth import SCOPES, Principal, Role, create_user, digest, new_api_token, require, validate_password
from gateway.models import ApiToken, AuditEntry, User, UserSession
from gateway.state import bus, sessions
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(prefix="/api", tags=["access"])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$", max_length=320)
    name: line(200) = ""
    role: Role
    password: str = Field(min_length=1, max_length=200)
    partner_id: uuid.UUID | None = Field(default=None, description="For the partner role (and only for it): the "
                                         "partner organisation this person belongs to and sees in the portal.")

    @model_validator(mode="after")
    def _partner_bound(self) -> UserIn:
        if self.role is Role.partner and self.partner_id is None:
            raise ValueError("a partner user needs partner_id: the partner organisation they belong to")
        if self.role is not Role.partner and self.partner_id is not None:
            raise ValueError("only a partner user belongs to a partner organisation (leave out partner_id)")
        return self

    @field_validator("password")
    @classmethod
    def _strong_enough(cls, value: str) -> str:
        problem = validate_password(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _not_the_email(self) -> UserIn:
        problem = validate_password(self.password, self.email)
        if problem:
            raise ValueError(f"password {problem}")
        return self


def _refuse_weak(password: str, email: str, field: str) -> None:
    """422 naming the field when the password is too weak for this account."""
    problem = validate_password(password, email)
    if problem:
        raise HTTPException(422, detail=[{"loc": ["body", field], "msg": f"password {problem}",
                                          "type": "weak_password"}])


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(min_length=1, max_length=200)


class ResetLink(BaseModel):
    url: str = Field(description="Single use; hand it to the person privately. Shown once.")
    expires_at: datetime


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    time_zone: str
    created_at: datetime
    partner_id: uuid.UUID | None = None


def _known_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin") from exc
    return value


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    active: bool | None = None
    time_zone: str | None = Field(default=None, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _known_zone(value)


class MePatch(BaseModel):
    """What people may change about themselves."""

    model_config = ConfigDict(extra="forbid")

    time_zone: str = Field(max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value) or value


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: line(100, 1)
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_in_days: int = Field(default=90, ge=1, le=3650,
                                 description="Every token expires; at most GATEWAY_TOKEN_MAX_DAYS.")

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; known: {sorted(SCOPES)}")
        return sorted(set(value))


class TokenOut(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: object | None
    after: object | None
    trace_id: str | None


class SessionIn(BaseModel):
    """A person's email and password, as on the sign-in page."""

    model_config = ConfigDict(extra="forbid")

    email: line(320, 1)
    password: str = Field(min_length=1, max_length=200)


class MeOut(UserOut):
    csrf_token: str | None = Field(default=None, description=(
        "Send it as the X-CSRF-Token header with every POST, PUT, PATCH and DELETE made with this session; "
        "null when the caller is not a signed-in session."))


class SessionOut(MeOut):
    session: str = Field(description=f"The session cookie's value ({auth.SESSION_COOKIE}), also set as a cookie: "
                                     "a client without a cookie jar sends it as `Cookie: "
                                     f"{auth.SESSION_COOKIE}=<session>`.")
    expires_at: datetime


def _user_out(u: User) -> UserOut:
    return UserOut(id=u.id, email=u.email, name=u.name, role=Role(u.role), active=u.active,
                   time_zone=u.time_zone, created_at=u.created_at, partner_id=u.partner_id)


def _token_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, scopes=list(t.scopes), created_by=t.created_by, created_at=t.created_at,
                    expires_at=t.expires_at, last_used_at=t.last_used_at, revoked_at=t.revoked_at)


async def _partner_exists(request: Request, partner_id: uuid.UUID, principal: Principal) -> None:
    try:
        await send(bus(request), pc.GetPartner(partner_id=partner_id, actor=principal.name))
    except CommandFailed as exc:
        if exc.error.kind == "not_found":
            raise HTTPException(422, detail=[{"loc": ["body", "partner_id"], "msg": "no partner with this id",
                                              "type": "not_found"}]) from exc
        raise


# About the caller's own account: partner users may call these too.
Own = Annotated[Principal, Depends(require(Role.viewer, partners=True))]


@router.get("/me", response_model=MeOut)
async def me(request: Request, principal: Own) -> MeOut:
    async with sessions(request)() as session:
        user = await session.get(User, uuid.UUID(principal.id))
    assert user is not None
    return MeOut(**_user_out(user).model_dump(), csrf_token=principal.csrf_token)


@router.post("/session", response_model=SessionOut, status_code=201, tags=["access"], responses={
    401: {"description": "wrong email or password"},
    429: {"description": "too many failed attempts: wait Retry-After seconds"}})
async def open_api_session(body: SessionIn, request: Request, response: Response) -> SessionOut | JSONResponse:
    """Sign in with JSON (the same checks and throttle as the sign-in page). Meant for a person's scripts and for
    creating the first API token; integrations use API tokens. Only a JSON body is read, so a cross-site form cannot
    sign a browser in to another account."""
    result = await signing.attempt(request, body.email, body.password)
    if result.wait:
        return JSONResponse({"detail": f"too many failed attempts; wait {result.wait} seconds"}, status_code=429,
                            headers={"Retry-After": str(result.wait)})
    if result.user is None or result.token is None or result.csrf_token is None:
        return JSONResponse({"detail": "wrong email or password"}, status_code=401)
    signing.set_cookies(request, response, result)
    return SessionOut(**_user_out(result.user).model_dump(), csrf_token=result.csrf_token, session=result.token,
                      expires_at=datetime.now(UTC) + auth.SESSION_LIFETIME)


@router.delete("/session", status_code=204, tags=["access"])
async def close_api_session(request: Request, principal: Own) -> Response:
    """Sign out: the session (cookie and CSRF token) stops working."""
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        async with sessions(request)() as session, session.begin():
            await auth.sign_out(session, token)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.patch("/me", response_model=UserOut)
async def change_me(body: MePatch, request: Request, principal: Own) -> UserOut:
    async with sessions(request)() as session, session.begin():
        user = await session.get(User, uuid.UUID(principal.id), with_for_update=True)
        assert user is not None
        before = _user_out(user)
        user.time_zone = body.time_zone
        await session.flush()
        after = _user_out(user)
        await audit.record(session, actor=principal.name, action="user.changed", entity="user", entity_id=user.id,
                           before=before, after=after)
    directory_sync.changed()
    return after


@router.get("/users", response_model=list[UserOut])
async def list_users(request: Request, _: Annotated[Principal, Depends(require(Role.admin))]) -> list[UserOut]:
    async with sessions(request)() as session:
        return [_user_out(u) for u in await session.scalars(select(User).order_by(User.email))]


@router.post("/users", response_model=UserOut, status_code=201)
async def add_user(body: UserIn, request: Request,
                   principal: Annotated[Principal, Depends(require(Role.admin))]) -> UserOut:
    if body.partner_id is not None:
        await _partner_exists(request, body.partner_id, principal)
    async with sessions(request)() as session, session.begin():
        if await session.scalar(select(User.id).where(func.lower(User.email) == body.email.lower())):
            raise HTTPException(409, detail=[{"loc": ["body", "email"], "msg": "a user with this email exists",
                                              "type": "conflict"}])
        user = await create_user(session, email=body.email, name=body.name, role=body.role, password=body.password,
                                 partner_id=body.partner_id)
        out = _user_out(user)
        await audit.record(session, actor=principal.name, action="user.created", entity="user", entity_id=user.id,
                           after=out)
    directory_sync.changed()
    return out


@router.patch("/users/{user_id}", response_model=UserOut)
async def change_user(user_id: uuid.UUID, body: UserPatch, request: Request,
                      principal: Annotated[Principal, Depends(require(Role.admin))]) -> UserOut:
    async with sessions(request)() as session, session.begin():
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise HTTPException(404, detail=[{"loc": ["path", "user_id"], "msg": "no such user", "type": "not_found"}])
        before = _user_out(user)
        if str(user.id) == principal.id and (body.role not in (None, Role.admin) or body.active is False):
            raise HTTPException(409, detail=[{"loc": ["body", "role"], "msg": "you cannot demote or disable yourself",
                                              "type": "conflict"}])
        if body.role is not None and body.role.value != user.role and Role.partner in (body.role, Role(user.role)):
            raise HTTPException(409, detail=[{"loc": ["body", "role"], "msg": "a partner user cannot become a team "
                                              "member or the other way round; add a new account", "type": "conflict"}])
        if body.role is not None:
            user.role = body.role.value
        if body.active is not None:
            user.active = body.active
        if body.active is False:
            await _cut_off(session, user, principal)
        if body.time_zone is not None:
            user.time_zone = body.time_zone
        await session.flush()
        after = _user_out(user)
        await audit.record(session, actor=principal.name, action="user.changed", entity="user", entity_id=user.id,
                           before=before, after=after)
    directory_sync.changed()
    return after


async def _cut_off(session: AsyncSession, user: User, principal: Principal) -> None:
    """A deactivated person's sessions end and the API tokens they created are revoked with them."""
    await session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    revoked = list(await session.scalars(
        update(ApiToken).where(ApiToken.created_by_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=func.now()).returning(ApiToken.id)))
    for token_id in revoked:
        await audit.record(session, actor=principal.name, action="token.revoked", entity="api_token",
                           entity_id=token_id, before={"revoked": False},
                           after={"revoked": True, "why": f"its creator {user.email} was deactivated"})


@router.post("/me/password", status_code=204, responses={401: {"description": "the current password is wrong"}})
async def change_password(body: PasswordChange, request: Request, principal: Own) -> Response:
    """Change your own password; every other session of yours ends (this one stays)."""
    _refuse_weak(body.new_password, principal.name, "new_password")
    async with sessions(request)() as session:
        user = await session.get(User, uuid.UUID(principal.id))
    if user is None or not await auth.check_password(user, body.current_password):
        raise HTTPException(401, detail=[{"loc": ["body", "current_password"], "msg": "wrong password",
                                          "type": "invalid"}])
    async with sessions(request)() as session, session.begin():
        await auth.set_password(session, user, body.new_password)
        await auth.end_other_sessions(session, user.id, request.cookies.get(auth.SESSION_COOKIE))
        await audit.record(session, actor=principal.name, action="user.password_changed", entity="user",
                           entity_id=user.id, after={"other_sessions": "ended"})
    return Response(status_code=204)


@router.post("/users/{user_id}/password-reset", response_model=ResetLink, status_code=201)
async def issue_password_reset(user_id: uuid.UUID, request: Request,
                               principal: Annotated[Principal, Depends(require(Role.admin))]) -> ResetLink:
    """A single-use link (24 hours) for someone who forgot their password; earlier links stop working."""
    async with sessions(request)() as session, session.begin():
        user = await session.get(User, user_id)
        if user is None or not user.active:
            raise HTTPException(404, detail=[{"loc": ["path", "user_id"], "msg": "no such active user",
                                              "type": "not_found"}])
        secret = await auth.issue_reset(session, user, principal.name)
        await audit.record(session, actor=principal.name, action="user.password_reset_issued", entity="user",
                           entity_id=user.id)
    return ResetLink(url=f"/reset/{secret}", expires_at=datetime.now(UTC) + auth.RESET_LIFETIME)


async def use_password_reset(request: Request, secret: str, password: str) -> User:
    """Sets the password a reset link was issued for and ends every session of that person. Raises
    404 for an unknown, used or expired link and 422 for a weak password (the link stays usable)."""
    async with sessions(request)() as session, session.begin():
        found = await auth.pending_reset(session, secret, lock=True)
        if found is None:
            raise HTTPException(404, detail="this reset link is unknown, used or expired; ask an admin for a new one")
        reset, user = found
        _refuse_weak(password, user.email, "password")
        await auth.set_password(session, user, password)
        reset.used_at = datetime.now(UTC)
        await auth.end_other_sessions(session, user.id, None)
        await audit.record(session, actor=user.email, action="user.password_reset", entity="user",
                           entity_id=user.id, after={"sessions": "ended", "issued_by": reset.created_by})
    return user


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(request: Request, _: Annotated[Principal, Depends(require(Role.admin))]) -> list[TokenOut]:
    async with sessions(request)() as session:
        return [_token_out(t) for t in await session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc()))]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
async def create_token(body: TokenIn, request: Request,
                       principal: Annotated[Principal, Depends(require(Role.admin))]) -> TokenCreated:
    max_days = request.app.state.settings.gateway_token_max_days
    if body.expires_in_days > max_days:
        raise HTTPException(422, detail=[{"loc": ["body", "expires_in_days"], "type": "too_long",
                                          "msg": f"at most {max_days} days (GATEWAY_TOKEN_MAX_DAYS)"}])
    secret = new_api_token()
    name_taken = HTTPException(409, detail=[{"loc": ["body", "name"], "type": "conflict",
                                             "msg": "a live token has this name; pick another or revoke it"}])
    try:
        async with sessions(request)() as session, session.begin():
            if await session.scalar(select(ApiToken.id).where(func.lower(ApiToken.name) == body.name.lower(),
                                                              ApiToken.revoked_at.is_(None))):
                raise name_taken
            token = ApiToken(name=body.name, token_hash=digest(secret), scopes=body.scopes, created_by=principal.name,
                             created_by_id=uuid.UUID(principal.id) if principal.kind == "user" else None,
                             expires_at=datetime.now(UTC) + timedelta(days=body.expires_in_days))
            session.add(token)
            await session.flush()
            await session.refresh(token)
            out = _token_out(token)
            await audit.record(session, actor=principal.name, action="token.created", entity="api_token",
                               entity_id=token.id, after={"name": body.name, "scopes": body.scopes,
                                                          "expires_at": out.expires_at.isoformat()})
    except IntegrityError as exc:  # two admins naming a token at the same moment
        raise name_taken from exc
    return TokenCreated(**out.model_dump(), token=secret)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
async def revoke_token(token_id: uuid.UUID, request: Request,
                       principal: Annotated[Principal, Depends(require(Role.admin))]) -> TokenOut:
    async with sessions(request)() as session, session.begin():
        token = await session.get(ApiToken, token_id)
        if token is None:
            raise HTTPException(404, detail=[{"loc": ["path", "token_id"], "msg": "no such token",
                                              "type": "not_found"}])
        if token.revoked_at is None:
            await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked_at=func.now()))
            await audit.record(session, actor=principal.name, action="token.revoked", entity="api_token",
                               entity_id=token_id, before={"revoked": False}, after={"revoked": True})
        await session.refresh(token)
        return _token_out(token)


@router.get("/audit", response_model=list[AuditOut])
async def audit_log(
    request: Request,
    _: Annotated[Principal, Depends(require(Role.admin))],
    entity: Annotated[line(100) | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[RowId | None, Query()] = None,
) -> list[AuditOut]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    async with sessions(request)() as session:
        return [AuditOut.model_validate(e, from_attributes=True) for e in await session.scalars(query)]
