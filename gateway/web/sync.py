"""The sync health page: each sync worker's state, last good pass, lag, counts, schedule, its recent
runs and the records it could not sync, with their reasons (gateway/routes/sync.py assesses them)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.routes.sync import STALE_AFTER, aws_health
from gateway.web.common import Viewer, render

router = APIRouter(include_in_schema=False)


@router.get("/sync", response_class=HTMLResponse)
async def sync_page(request: Request, _: Viewer) -> Response:
    syncs = [await aws_health(request)]
    return render(request, "sync.html", {"syncs": syncs, "stale_minutes": int(STALE_AFTER.total_seconds() // 60)})
