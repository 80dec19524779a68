"""Alerts: each person's in-app feed and what they receive (their own only: the user id is the signed-in
person's, never a parameter), the rules, and for admins the emails with their delivery status and a
retry. API tokens cannot reach these routes: a token belongs to no person."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from contracts import notifications as nc
from contracts.fields import Offset
from gateway import audit
from gateway.auth import Principal, Role, require
from gateway.state import bus
from runtime.commands import send

router = APIRouter(prefix="/api", tags=["alerts"])

Person = Annotated[Principal, Depends(require(Role.viewer))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadIn(_In):
    alert_ids: list[UUID] | None = Field(default=None, max_length=500,
                                         description="The alerts to mark read; all of yours when left out.")


class PreferencesIn(_In):
    email: bool = True
    digest: bool = False
    quiet_from: nc.LocalHour | None = None
    quiet_until: nc.LocalHour | None = None
    muted_rules: list[nc.RuleKey] = Field(default_factory=list, max_length=50)


@router.get("/alerts", response_model=nc.Feed)
async def list_alerts(request: Request, principal: Person, unread_only: bool = False, offset: Offset = 0,
                      limit: Annotated[int, Query(ge=0, le=200)] = 50) -> nc.Feed:
    """Your alerts, newest first, with the number unread (limit=0 for the counts alone)."""
    return await send(bus(request), nc.ListFeed(  # type: ignore[no-any-return]
        actor=principal.name, user_id=principal.id, unread_only=unread_only, offset=offset, limit=limit))


@router.post("/alerts/read", response_model=nc.MarkedRead)
async def mark_read(body: ReadIn, request: Request, principal: Person) -> nc.MarkedRead:
    return await send(bus(request), nc.MarkAlertsRead(actor=principal.name, user_id=principal.id,  # type: ignore[no-any-return]
                                                      alert_ids=body.alert_ids))


@router.get("/alerts/rules", response_model=nc.RuleList)
async def rules(request: Request, principal: Person) -> nc.RuleList:
    return await send(bus(request), nc.ListRules(actor=principal.name))  # type: ignore[no-any-return]


@router.get("/alerts/preferences", response_model=nc.Preferences)
async def preferences(request: Request, principal: Person) -> nc.Preferences:
    return await send(bus(request), nc.GetPreferences(actor=principal.name, user_id=principal.id))  # type: ignore[no-any-return]


@router.put("/alerts/preferences", response_model=nc.Preferences)
async def set_preferences(body: PreferencesIn, request: Request, principal: Person) -> nc.Preferences:
    """Replace your preferences. Your time zone is the one on your account (PATCH /api/me)."""
    return await send(bus(request), nc.SetPreferences(actor=principal.name,   # type: ignore[no-any-return]
        user_id=principal.id, **body.model_dump()))


@router.post("/alerts/digest", response_model=nc.DigestQueued, status_code=202)
async def digest_now(request: Request, principal: Person) -> nc.DigestQueued:
    """Email yourself this week's digest now (it otherwise comes Monday 08:00 in your time zone)."""
    return await send(bus(request), nc.SendDigestNow(actor=principal.name, user_id=principal.id))  # type: ignore[no-any-return]


@router.get("/admin/deliveries", response_model=nc.DeliveryList)
async def deliveries(request: Request, principal: Admin, status: nc.DeliveryStatus | None = None, offset: Offset = 0,
                     limit: Annotated[int, Query(ge=1, le=200)] = 50) -> nc.DeliveryList:
    """Emails sent, waiting (with their next attempt) or failed (with the last error)."""
    return await send(bus(request), nc.ListDeliveries(actor=principal.name, status=status, offset=offset,  # type: ignore[no-any-return]
                                                      limit=limit))


@router.post("/admin/deliveries/{delivery_id}/retry", response_model=nc.Delivery)
async def retry(delivery_id: UUID, request: Request, principal: Admin) -> nc.Delivery:
    """Try a failed email again now (audited)."""
    result: nc.Delivery = await send(bus(request), nc.RetryDelivery(actor=principal.name, delivery_id=delivery_id))
    await audit.record_change(request, principal.name, "delivery.retried", entity_id=delivery_id,
                              after={"to": result.to, "subject": result.subject})
    return result
