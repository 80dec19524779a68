"""The pipeline board, opportunity detail and the deal form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.web.common import Viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/pipeline", response_class=HTMLResponse)
async def board(request: Request, _: Viewer) -> Response:
    return render(request, "pipeline.html", {"columns": None})
