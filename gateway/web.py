"""Server-rendered pages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from contracts import pipeline as pc
from gateway.routes.partners import PartnerIn, actor, compute_kpis
from gateway.state import bus
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    return await _render_dashboard(request)


async def _render_dashboard(request: Request, *, errors: dict[str, str] | None = None,
                            form: dict[str, str] | None = None, status_code: int = 200) -> Response:
    kpis = await compute_kpis(request)
    return templates.TemplateResponse(
        request, "dashboard.html",
        {"kpis": kpis, "types": list(pc.PartnerType), "errors": errors or {}, "form": form or {},
         "created": request.query_params.get("created")},
        status_code=status_code,
    )


@router.post("/partners")
async def create_partner_form(
    request: Request,
    name: Annotated[str, Form()] = "",
    type: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
) -> Response:
    form = {"name": name, "type": type, "owner": owner}
    try:
        body = PartnerIn(name=name, type=type, owner=owner or None)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = {str(e["loc"][0]): e["msg"] for e in exc.errors()}
        return await _render_dashboard(request, errors=errors, form=form, status_code=422)
    try:
        partner = await send(bus(request), pc.CreatePartner(**body.model_dump(), actor=actor(request)))
    except CommandFailed as exc:
        errors = {exc.error.field or "name": exc.error.message}
        return await _render_dashboard(request, errors=errors, form=form, status_code=422)
    return RedirectResponse(f"/?created={partner.name}", status_code=303)
