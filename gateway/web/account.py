"""Your own account (change your password) and the single-use reset link an admin hands out.

Both call the REST API's functions (gateway/routes/access.py), so a password set here is checked,
and the sessions it ends are ended, exactly as over the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import auth
from gateway.routes import access
from gateway.state import sessions
from gateway.web.common import Own, render

router = APIRouter(include_in_schema=False)
Secret = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


def _errors(exc: HTTPException, default: str) -> dict[str, str]:
    if isinstance(exc.detail, list):
        return {str(d["loc"][-1]): str(d["msg"]) for d in exc.detail}
    return {default: str(exc.detail)}


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, _: Own) -> Response:
    return render(request, "account.html", {"errors": {}, "notice": request.query_params.get("notice")})


@router.post("/account/password")
async def change_password_form(
    request: Request,
    principal: Own,
    current_password: Annotated[str, Form(max_length=1000)] = "",
    new_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        body = access.PasswordChange(current_password=current_password or "-", new_password=new_password or "-")
        await access.change_password(body, request, principal)
    except HTTPException as exc:
        return render(request, "account.html", {"errors": _errors(exc, "new_password")},
                      status_code=exc.status_code)
    return RedirectResponse("/account?notice=Password+changed.+Your+other+sessions+were+signed+out.",
                            status_code=303)


@router.get("/reset/{secret}", response_class=HTMLResponse)
async def reset_page(secret: Secret, request: Request) -> Response:
    async with sessions(request)() as session:
        found = await auth.pending_reset(session, secret)
    if found is None:
        return render(request, "reset.html", {"invalid": True}, status_code=404)
    return render(request, "reset.html", {"email": found[1].email, "errors": {}})


@router.post("/reset/{secret}")
async def reset_form(secret: Secret, request: Request,
                     password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    # No session and no CSRF cookie here: the unguessable, single-use link is what authorises the change.
    try:
        await access.use_password_reset(request, secret, password)
    except HTTPException as exc:
        if exc.status_code == 404:
            return render(request, "reset.html", {"invalid": True}, status_code=404)
        async with sessions(request)() as session:
            found = await auth.pending_reset(session, secret)
        return render(request, "reset.html", {"email": found[1].email if found else "",
                                              "errors": _errors(exc, "password")}, status_code=exc.status_code)
    return RedirectResponse("/signin?reset=1", status_code=303)
