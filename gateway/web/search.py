"""The search page (/search), opened with `/` from any page (static/search.js); what it finds and how is
gateway/search.py, shared with GET /api/search."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gateway.search import MAX_QUERY, PER_KIND, search, ts_query
from gateway.web.common import Viewer, render

router = APIRouter(include_in_schema=False)

__all__ = ["router", "search_page", "ts_query"]


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, principal: Viewer) -> Response:
    q = request.query_params.get("q", "")[:MAX_QUERY]
    results = await search(request, q, principal.name) if q.strip() else None
    return render(request, "search.html", {"q": q, "results": results, "per_kind": PER_KIND})
