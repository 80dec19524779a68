"""What every page shares: the templates with their filters, who may see what, and turning the
server's validation errors into messages beside the fields they concern."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import pipeline as pc
from gateway import errors, people
from gateway.auth import Principal, Role, optional_principal, require
from gateway.web import charts
from gateway.web.formatting import FILTERS
from runtime.errors import CommandFailed

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

NAV: tuple[tuple[str, str, Role], ...] = (
    ("/", "Dashboard", Role.viewer),
    ("/pipeline", "Pipeline", Role.viewer),
    ("/partners", "Partners", Role.viewer),
    ("/relationships", "Relationships", Role.viewer),
    ("/attention", "Attention", Role.viewer),
    ("/commissions", "Commissions", Role.viewer),
    ("/funding", "Funding", Role.viewer),
    ("/goals", "Goals", Role.viewer),
    ("/week", "Week", Role.viewer),
    ("/team", "Team", Role.viewer),
    ("/sync", "Syncs", Role.viewer),
    ("/import", "Import", Role.member),
    ("/admin", "Admin", Role.admin),
)


# What a partner user sees (gateway/web/portal.py); the team's pages all refuse them.
PORTAL_NAV: tuple[tuple[str, str], ...] = (("/portal", "Overview"), ("/portal/register", "Register a deal"))


def _active(path: str) -> str | None:
    if path.startswith("/opportunities"):
        return "/pipeline"
    if path.startswith("/competencies"):
        return "/goals"
    if path.startswith("/contacts"):
        return "/relationships"
    if path.startswith(("/onboarding", "/registrations", "/enablement", "/reviews")):
        return "/partners"
    for href in ("/pipeline", "/partners", "/relationships", "/attention", "/commissions", "/funding", "/goals",
                 "/week", "/team", "/sync", "/import", "/admin"):
        if path == href or path.startswith(href + "/"):
            return href
    return "/" if path == "/" else None


def _base_context(request: Request) -> dict[str, Any]:
    principal: Principal | None = getattr(request.state, "principal", None)
    active = _active(request.url.path)
    is_partner = principal is not None and principal.role is Role.partner
    if is_partner:
        nav = [{"href": href, "label": label, "current": href == request.url.path} for href, label in PORTAL_NAV]
    else:
        nav = [] if principal is None else [
            {"href": href, "label": label, "current": href == active}
            for href, label, role in NAV if principal.role.rank >= role.rank
        ]
    # Context processors override what a page passes, so the sign-in page's own token must survive.
    extra = {"csrf_token": principal.csrf_token} if principal else {}
    return {
        **extra,
        "principal": principal,
        "can_edit": principal is not None and principal.role.rank >= Role.member.rank,
        "is_manager": principal is not None and principal.role.rank >= Role.manager.rank,
        "is_admin": principal is not None and principal.role is Role.admin,
        "is_partner": is_partner,
        "nav": nav,
    }


templates = Jinja2Templates(directory=str(TEMPLATES_DIR), context_processors=[_base_context])
templates.env.filters.update(FILTERS)
# An owner's name from their user id (deals and partners are owned by id; gateway/people.py).
templates.env.filters["person"] = pass_context(lambda context, owner: people.name_for(context.get("request"), owner))
templates.env.globals["charts"] = charts
# How long a deleted deal or partner can be restored (the Undo banners and the Deleted lists say it).
templates.env.globals["restore_days"] = pc.RESTORE_DAYS

Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Member = Annotated[Principal, Depends(require(Role.member))]
Manager = Annotated[Principal, Depends(require(Role.manager))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
# Pages about the caller's own account (sign out, password): partner users reach them too.
Own = Annotated[Principal, Depends(require(Role.viewer, partners=True))]


def render(request: Request, name: str, context: dict[str, Any] | None = None, *,
           status_code: int = 200) -> Response:
    return templates.TemplateResponse(request, name, context or {}, status_code=status_code)


def not_found(request: Request, what: str) -> Response:
    return render(request, "not_found.html", {"what": what}, status_code=404)


def wants_html(request: Request) -> bool:
    """A person's browser (it asks for HTML) outside the API: errors come as pages; programs get JSON."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith("/api/")


# What a path's first segment holds, for "No such partner" on a wrong link.
_THINGS = {"partners": "partner", "opportunities": "deal", "contacts": "contact", "funding": "fund request",
           "goals": "goal", "competencies": "competency", "team": "team member", "commissions": "commission page"}
_TITLES = {400: "That request cannot be read", 404: "Not found", 405: "Not possible here",
           409: "Changed meanwhile", 413: "Too large", 422: "That link has a value the page cannot use",
           429: "Too many tries", 500: "Something went wrong on our side", 503: "Unavailable for a moment"}


def _thing(request: Request) -> str:
    first = request.url.path.strip("/").split("/", 1)[0]
    return _THINGS.get(first, "page")


async def _signed_in(request: Request) -> None:
    """Who is signed in, for the page's navigation, when no route dependency found out (an unknown path)."""
    if getattr(request.state, "principal", None) is None:
        with contextlib.suppress(Exception):
            request.state.principal = await optional_principal(request)


async def error_page(request: Request, status_code: int, detail: str = "",
                     headers: Mapping[str, str] | None = None) -> Response:
    await _signed_in(request)
    if status_code == 404:
        response = render(request, "not_found.html", {"what": _thing(request)}, status_code=404)
    elif status_code == 403:
        response = render(request, "forbidden.html", {"detail": detail}, status_code=403)
    else:
        response = render(request, "error.html", {"status": status_code, "detail": detail,
                                                  "title": _TITLES.get(status_code, "That did not work")},
                          status_code=status_code)
    response.headers.update(dict(headers or {}))
    return response


async def http_error_page(request: Request, exc: Exception) -> Response:
    """A person in a browser gets a page saying what happened (404, 403, ...); programs get JSON."""
    assert isinstance(exc, StarletteHTTPException)
    if wants_html(request) and exc.status_code not in (401, 304):
        detail = exc.detail if isinstance(exc.detail, str) else ""
        return await error_page(request, exc.status_code, detail, exc.headers)
    return await http_exception_handler(request, exc)


async def validation_error_page(request: Request, exc: Exception) -> Response:
    """A wrong link (`/partners/not-a-uuid`) is a page that does not exist: a 404 page for a person;
    a bad query value a 422 page; programs get the API's JSON 422."""
    assert isinstance(exc, RequestValidationError)
    if not wants_html(request):
        return await errors.validation_error_handler(request, exc)
    if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
        return await error_page(request, 404)
    fields = ", ".join(str(e["loc"][-1]) for e in exc.errors() if e.get("loc"))
    return await error_page(request, 422, f"Check the value of: {fields}." if fields else "")


async def server_error_page(request: Request, exc: Exception) -> Response:
    """A bug: logged with its trace by the server; the person sees a page, a program a JSON 500."""
    if wants_html(request):
        with contextlib.suppress(Exception):
            return await error_page(request, 500, "It has been logged. Try again, or go back to the dashboard.")
    return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


def field_errors(exc: ValidationError | CommandFailed, default_field: str = "form") -> dict[str, str]:
    """{field: message} from a pydantic error (our own form models) or a service's typed error."""
    if isinstance(exc, CommandFailed):
        name = (exc.error.field or default_field).split(".")[-1]
        return {name: exc.error.message}
    errors: dict[str, str] = {}
    for e in exc.errors():
        # The innermost named field: ("scorecard", "risk") -> "risk"; ("scopes", 0) -> "scopes".
        loc = [str(p) for p in e["loc"] if p != "body" and not isinstance(p, int) and str(p) not in _TYPE_TAGS
               and "[" not in str(p)]
        errors.setdefault(loc[-1] if loc else default_field, _plain_message(e))
    return errors


# Union members pydantic names in an error's location; they are not fields.
_TYPE_TAGS = frozenset({"int", "str", "float", "bool", "decimal", "date", "datetime", "uuid", "list", "dict", "none"})
# pydantic's wording is for programmers; these read better beside a form field.
_FRIENDLY = {
    "missing": "Required.",
    "decimal_parsing": "Enter a number, like 25000 or 25000.50.",
    "decimal_max_places": "At most two decimal places.",
    "date_from_datetime_parsing": "Enter a date.",
    "date_parsing": "Enter a date.",
    "uuid_parsing": "Pick one from the list.",
    "enum": "Pick one from the list.",
}


def _plain_message(error: Any) -> str:
    if error["type"] == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "Required."
    if error["type"] in _FRIENDLY:
        return _FRIENDLY[error["type"]]
    # Custom validators' messages are written for people already, behind pydantic's prefix.
    return str(error["msg"]).removeprefix("Value error, ")


def back_to(request: Request, fallback: str) -> str:
    """Where to go back to after a form post: the page it came from when that page is ours."""
    referer = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.url.netloc}"
    if referer.startswith(origin + "/"):
        return referer[len(origin):]
    return fallback

