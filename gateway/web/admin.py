"""Admin pages: people and their roles, API tokens (shown once), and the audit log.

The pages call the same functions as the REST API in gateway/routes/access.py, so a change made
here is validated and audited exactly like one made over the API."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select

from gateway.auth import SCOPES, STAFF_ROLES
from gateway.models import ApiToken, AuditEntry, User
from gateway.routes import access
from gateway.state import sessions
from gateway.web.common import Admin, field_errors, render

router = APIRouter(include_in_schema=False)


async def _admin_page(request: Request, *, user_errors: dict[str, str] | None = None,
                      user_form: dict[str, str] | None = None, token_errors: dict[str, str] | None = None,
                      token_form: dict[str, object] | None = None, new_token: access.TokenCreated | None = None,
                      new_reset: tuple[str, access.ResetLink] | None = None, status_code: int = 200) -> Response:
    async with sessions(request)() as session:
        users = list(await session.scalars(select(User).order_by(User.email)))
        tokens = list(await session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())))
    return render(request, "admin.html", {
        "users": users, "tokens": tokens, "roles": list(STAFF_ROLES), "scopes": SCOPES,
        "user_errors": user_errors or {}, "user_form": user_form or {},
        "token_errors": token_errors or {}, "token_form": token_form or {}, "new_token": new_token,
        "new_reset": new_reset,
        "notice": request.query_params.get("notice"),
    }, status_code=status_code)


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(request: Request, _: Admin) -> Response:
    return await _admin_page(request)


def _http_errors(exc: HTTPException) -> dict[str, str]:
    detail = exc.detail
    if isinstance(detail, list):
        return {str(d["loc"][-1]): d["msg"] for d in detail}
    return {"form": str(detail)}


@router.post("/admin/users")
async def add_user_form(
    request: Request,
    principal: Admin,
    email: Annotated[str, Form(max_length=1000)] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=50)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    form = {"email": email, "name": name, "role": role}
    try:
        body = access.UserIn(email=email, name=name, role=role, password=password)  # type: ignore[arg-type]
        user = await access.add_user(body, request, principal)
    except ValidationError as exc:
        return await _admin_page(request, user_errors=field_errors(exc, "email"), user_form=form, status_code=422)
    except HTTPException as exc:
        return await _admin_page(request, user_errors=_http_errors(exc), user_form=form,
                                 status_code=exc.status_code)
    return RedirectResponse(f"/admin?notice=Added+{user.email}", status_code=303)


@router.post("/admin/users/{user_id}")
async def change_user_form(
    user_id: uuid.UUID,
    request: Request,
    principal: Admin,
    role: Annotated[str | None, Form(max_length=50)] = None,
    active: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    try:
        body = access.UserPatch(role=role or None, active=None if active is None else active == "true")  # type: ignore[arg-type]
        user = await access.change_user(user_id, body, request, principal)
    except ValidationError as exc:
        return await _admin_page(request, user_errors=field_errors(exc, "role"), status_code=422)
    except HTTPException as exc:
        return await _admin_page(request, user_errors=_http_errors(exc), status_code=exc.status_code)
    return RedirectResponse(f"/admin?notice=Changed+{user.email}", status_code=303)


@router.post("/admin/tokens")
async def create_token_form(request: Request, principal: Admin) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))
    scopes = [str(s) for s in form.getlist("scopes")]
    days = str(form.get("expires_in_days", "") or "90")
    token_form: dict[str, object] = {"name": name, "scopes": scopes, "expires_in_days": days}
    try:
        body = access.TokenIn(name=name, scopes=scopes, expires_in_days=days)  # type: ignore[arg-type]
        created = await access.create_token(body, request, principal)
    except ValidationError as exc:
        return await _admin_page(request, token_errors=field_errors(exc, "name"), token_form=token_form,
                                 status_code=422)
    except HTTPException as exc:
        return await _admin_page(request, token_errors=_http_errors(exc), token_form=token_form,
                                 status_code=exc.status_code)
    # Shown once, on this response only: it is never stored in the clear, so a reload cannot show it.
    return await _admin_page(request, new_token=created)


@router.post("/admin/users/{user_id}/reset")
async def reset_link_form(user_id: uuid.UUID, request: Request, principal: Admin) -> Response:
    try:
        link = await access.issue_password_reset(user_id, request, principal)
    except HTTPException as exc:
        return await _admin_page(request, user_errors=_http_errors(exc), status_code=exc.status_code)
    async with sessions(request)() as session:
        user = await session.get(User, user_id)
    # Shown once, on this response only (no-store, like a new token).
    return await _admin_page(request, new_reset=(user.email if user else str(user_id), link))


@router.post("/admin/tokens/{token_id}/revoke")
async def revoke_token_form(token_id: uuid.UUID, request: Request, principal: Admin) -> Response:
    try:
        token = await access.revoke_token(token_id, request, principal)
    except HTTPException as exc:
        return await _admin_page(request, token_errors=_http_errors(exc), status_code=exc.status_code)
    return RedirectResponse(f"/admin?notice=Revoked+{token.name}", status_code=303)


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    _: Admin,
    entity: Annotated[str | None, Query(max_length=100)] = None,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    limit = 100
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if before_id:
        query = query.where(AuditEntry.id < before_id)
    async with sessions(request)() as session:
        entries = list(await session.scalars(query))
        entities = list(await session.scalars(select(AuditEntry.entity).distinct().order_by(AuditEntry.entity)))
    more = len(entries) > limit
    entries = entries[:limit]
    return render(request, "audit.html", {
        "entries": entries, "entity": entity, "entities": entities,
        "next_before": entries[-1].id if more and entries else None,
        "pretty": lambda v: json.dumps(v, indent=1, sort_keys=True, default=str) if v is not None else "",
    })

