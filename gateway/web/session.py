"""Signing in and out. The sign-in form carries a pre-session CSRF token in a cookie of its own."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway import auth
from gateway import signin as signing
from gateway.state import sessions
from gateway.web.common import Own, templates

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after sign-in would hand the session to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/", reset: bool = False) -> Response:
    return _signin_form(request, next_url=_safe_next(next),
                        notice="Your password was set. Sign in with it." if reset else None)


def _signin_form(request: Request, *, next_url: str, error: str | None = None, email: str = "",
                 status_code: int = 200, notice: str | None = None) -> Response:
    pre = request.cookies.get(auth.PRE_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = templates.TemplateResponse(
        request, "signin.html", {"csrf_token": pre, "next": next_url, "error": error, "email": email, "notice": notice},
        status_code=status_code,
    )
    response.set_cookie(auth.PRE_CSRF_COOKIE, pre, httponly=True, samesite="strict", secure=signing.secure(request))
    return response


@router.post("/signin")
async def signin(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    next_url = _safe_next(next)
    pre = request.cookies.get(auth.PRE_CSRF_COOKIE, "")
    if not pre or not hmac.compare_digest(pre, csrf_token):
        return _signin_form(request, next_url=next_url, email=email, status_code=403,
                            error="Your sign-in form expired. Please try again.")
    result = await signing.attempt(request, email, password)
    if result.wait:
        response = _signin_form(request, next_url=next_url, email=email, status_code=429,
                                error=f"Too many failed attempts. Wait {result.wait} seconds and try again.")
        response.headers["Retry-After"] = str(result.wait)
        return response
    if result.token is None:
        return _signin_form(request, next_url=next_url, email=email, status_code=401,
                            error="Wrong email or password.")
    if result.user is not None and result.user.role == auth.Role.partner.value and not next_url.startswith("/portal"):
        next_url = "/portal"  # the team's pages refuse partner users; the portal is theirs
    response = RedirectResponse(next_url, status_code=303)
    signing.set_cookies(request, response, result)
    response.delete_cookie(auth.PRE_CSRF_COOKIE)
    return response


@router.post("/signout")
async def signout(request: Request, _: Own) -> Response:
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        async with sessions(request)() as session, session.begin():
            await auth.sign_out(session, token)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response
