"""The team and each member's own KPIs. A member sees their own page; managers and the VP see all."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from gateway.auth import Role
from gateway.models import User
from gateway.state import sessions
from gateway.web.common import Viewer, not_found, render

router = APIRouter(include_in_schema=False)


@router.get("/team", response_class=HTMLResponse)
async def team(request: Request, principal: Viewer) -> Response:
    query = select(User).where(User.active).order_by(User.name)
    if principal.role.rank < Role.manager.rank:
        query = query.where(User.id == uuid.UUID(principal.id))
    async with sessions(request)() as session:
        users = list(await session.scalars(query))
    return render(request, "team.html", {"users": users, "kpis": {}})


@router.get("/team/{user_id}", response_class=HTMLResponse)
async def member(user_id: uuid.UUID, request: Request, principal: Viewer) -> Response:
    async with sessions(request)() as session:
        user = await session.get(User, user_id)
    if user is None:
        return not_found(request, "team member")
    if str(user_id) != principal.id and principal.role.rank < Role.manager.rank:
        return render(request, "forbidden.html",
                      {"detail": "You can see your own KPIs; managers see everyone's."}, status_code=403)
    return render(request, "member.html", {"member": user, "kpis": None})
