"""GET /api/search: what the search page finds, as JSON, for the same people (the team: viewers and up;
partner users get 403, as on every team route; tokens need `search:read`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from gateway.auth import Principal, Role, require
from gateway.search import MAX_QUERY, SearchResults, search

router = APIRouter(prefix="/api", tags=["search"])

Reader = Annotated[Principal, Depends(require(Role.viewer, scope="search:read"))]


@router.get("/search", response_model=SearchResults)
async def search_api(request: Request, principal: Reader,
                     q: Annotated[str, Query(max_length=MAX_QUERY, description=(
                         "Words, each matching the start of a word: partners by name; deals by name, customer, "
                         "external id or owner; contacts as on their page. Punctuation separates words."))] = ""
                     ) -> SearchResults:
    """Up to 10 partners (by name), deals (biggest first) and contacts; archived and deleted ones left out.
    Nothing searchable typed: empty lists."""
    return await search(request, q, principal.name)
