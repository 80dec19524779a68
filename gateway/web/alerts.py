"""Alert pages: your feed (/alerts) and what you receive (/alerts/preferences); for admins, the emails
with their status and a retry (/admin/deliveries) and the local mailbox `partnerops up` runs
(/admin/mailbox), so a new installation sees its alerts and digests without a mail server."""

from __future__ import annotations

import base64
import mailbox
import re
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from contracts import notifications as nc
from gateway import audit
from gateway.state import bus
from gateway.web.common import Admin, Viewer, field_errors, render
from runtime import mailbox as local_mailbox
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)

_MAIL_KEY = re.compile(r"^[A-Za-z0-9._,:=-]{1,200}$")
# The raw HTML of a received email, shown in a tab of its own: no script, no fetch, images inline only.
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, principal: Viewer, unread: bool = False) -> Response:
    feed = await send(bus(request), nc.ListFeed(actor=principal.name, user_id=principal.id, unread_only=unread,
                                                limit=100))
    rules = {r.key: r.title for r in (await send(bus(request), nc.ListRules(actor=principal.name))).items}
    return render(request, "alerts.html", {"feed": feed, "rules": rules, "unread_only": unread,
                                           "notice": request.query_params.get("notice")})


@router.post("/alerts/read")
async def mark_read_form(request: Request, principal: Viewer,
                         alert_id: Annotated[str, Form(max_length=64)] = "") -> Response:
    ids: list[uuid.UUID] | None = None
    if alert_id:
        try:
            ids = [uuid.UUID(alert_id)]
        except ValueError as exc:
            raise HTTPException(422, detail="not an alert id") from exc
    await send(bus(request), nc.MarkAlertsRead(actor=principal.name, user_id=principal.id, alert_ids=ids))
    return RedirectResponse("/alerts", status_code=303)


async def _preferences_page(request: Request, principal: Viewer, *, errors: dict[str, str] | None = None,
                            form: nc.Preferences | None = None, status_code: int = 200) -> Response:
    prefs = form or await send(bus(request), nc.GetPreferences(actor=principal.name, user_id=principal.id))
    rules = (await send(bus(request), nc.ListRules(actor=principal.name))).items
    return render(request, "alerts_preferences.html", {
        "prefs": prefs, "rules": rules, "errors": errors or {}, "hours": list(range(24)),
        "notice": request.query_params.get("notice")}, status_code=status_code)


@router.get("/alerts/preferences", response_class=HTMLResponse)
async def preferences_page(request: Request, principal: Viewer) -> Response:
    return await _preferences_page(request, principal)


@router.post("/alerts/preferences")
async def preferences_form(request: Request, principal: Viewer) -> Response:
    form = await request.form()
    # A rule left unticked is muted (the form lists every rule with a box).
    received = {str(v) for v in form.getlist("on")}
    rules = [r.key for r in (await send(bus(request), nc.ListRules(actor=principal.name))).items]
    values = {
        "user_id": principal.id, "email": form.get("email") == "on", "digest": form.get("digest") == "on",
        "quiet_from": str(form.get("quiet_from") or "") or None,
        "quiet_until": str(form.get("quiet_until") or "") or None,
        "muted_rules": [key for key in rules if key not in received],
    }
    try:
        await send(bus(request), nc.SetPreferences.model_validate({**values, "actor": principal.name}))
    except (ValidationError, CommandFailed) as exc:
        shown = nc.Preferences.model_construct(**{**values, "quiet_from": None, "quiet_until": None})
        return await _preferences_page(request, principal, errors=field_errors(exc), form=shown, status_code=422)
    return RedirectResponse("/alerts/preferences?notice=Saved", status_code=303)


@router.post("/alerts/digest")
async def digest_now_form(request: Request, principal: Viewer) -> Response:
    try:
        queued = await send(bus(request), nc.SendDigestNow(actor=principal.name, user_id=principal.id))
    except CommandFailed as exc:
        return RedirectResponse(f"/alerts/preferences?notice={quote(exc.error.message)}", status_code=303)
    notice = quote(f"The digest of {queued.week} is on its way to {queued.to}")
    return RedirectResponse(f"/alerts/preferences?notice={notice}", status_code=303)


@router.get("/admin/deliveries", response_class=HTMLResponse)
async def deliveries_page(request: Request, principal: Admin, status: nc.DeliveryStatus | None = None) -> Response:
    page = await send(bus(request), nc.ListDeliveries(actor=principal.name, status=status, limit=200))
    return render(request, "admin_deliveries.html", {
        "page": page, "status": status.value if status else "", "statuses": [s.value for s in nc.DeliveryStatus],
        "smtp": bool(request.app.state.settings.smtp_url), "notice": request.query_params.get("notice")})


@router.post("/admin/deliveries/{delivery_id}/retry")
async def retry_form(delivery_id: uuid.UUID, request: Request, principal: Admin) -> Response:
    try:
        result = await send(bus(request), nc.RetryDelivery(actor=principal.name, delivery_id=delivery_id))
    except CommandFailed as exc:
        return RedirectResponse(f"/admin/deliveries?notice={quote(exc.error.message)}", status_code=303)
    await audit.record_change(request, principal.name, "delivery.retried", entity_id=delivery_id,
                              after={"to": result.to, "subject": result.subject})
    return RedirectResponse("/admin/deliveries?notice=Queued+again", status_code=303)


def _mailbox_dir(request: Request) -> Path | None:
    return request.app.state.settings.mailbox_dir


@router.get("/admin/mailbox", response_class=HTMLResponse)
async def mailbox_page(request: Request, _: Admin) -> Response:
    directory = _mailbox_dir(request)
    messages = local_mailbox.read(directory) if directory else []
    return render(request, "admin_mailbox.html", {"messages": messages, "directory": directory})


def _message(request: Request, key: str) -> EmailMessage:
    directory = _mailbox_dir(request)
    if directory is None or not _MAIL_KEY.fullmatch(key):
        raise HTTPException(404, detail="no such message")
    try:
        raw = mailbox.Maildir(directory, create=False).get_bytes(key)
    except (KeyError, OSError) as exc:
        raise HTTPException(404, detail="no such message") from exc
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@router.get("/admin/mailbox/{key}", response_class=HTMLResponse)
async def mailbox_message(key: str, request: Request, _: Admin) -> Response:
    msg = _message(request, key)
    text = msg.get_body(preferencelist=("plain",))
    return render(request, "admin_mailbox_message.html", {
        "key": key, "msg": msg, "text": text.get_content() if text else "",
        "has_html": msg.get_body(preferencelist=("html",)) is not None})


@router.get("/admin/mailbox/{key}/html")
async def mailbox_html(key: str, request: Request, _: Admin) -> Response:
    """The email's HTML as a mail client shows it: its inline images (cid:) turned into data: URLs."""
    msg = _message(request, key)
    part = msg.get_body(preferencelist=("html",))
    if part is None:
        raise HTTPException(404, detail="this message has no HTML part")
    html = str(part.get_content())
    for sub in msg.walk():
        cid = str(sub.get("Content-ID", "")).strip("<>")
        if cid and sub.get_content_maintype() == "image":
            data = base64.b64encode(sub.get_payload(decode=True) or b"").decode()
            html = html.replace(f"cid:{cid}", f"data:{sub.get_content_type()};base64,{data}")
    return HTMLResponse(html, headers={"content-security-policy": MAIL_CSP})
