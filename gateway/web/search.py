"""Global search: partners and deals from the gateway's read models (Postgres full text, prefix
matching as one types), contacts from the relationships service (its own search, by command: the
gateway holds no copy of contacts). Opened with `/` from any page (static/search.js)."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, literal_column, select

from contracts import contacts as ct
from contracts import pipeline as pc
from gateway.read_models.partners import PartnerView
from gateway.read_models.pipeline import OpportunityView
from gateway.state import bus, sessions
from gateway.web.common import Viewer, render
from runtime.commands import send
from runtime.errors import CommandFailed

router = APIRouter(include_in_schema=False)

PER_KIND = 10
MAX_QUERY = 200
MAX_WORDS = 8
# Letters and digits in any script; everything else (quotes, operators, control characters) separates words,
# so nothing a person types reaches to_tsquery as syntax.
_WORD = re.compile(r"\w{1,50}", re.UNICODE)


def ts_query(q: str) -> str | None:
    """'acme da' -> 'acme:* & da:*' (every word, each as a prefix), or None when nothing searchable is left."""
    words = [w.lower() for w in _WORD.findall(q[:MAX_QUERY].replace("_", " "))][:MAX_WORDS]
    return " & ".join(f"{w}:*" for w in words) or None


def _vector(column: object) -> object:
    # 'simple': names are proper nouns, which English stemming would mangle. The same expression as the
    # GIN indexes (gateway_web_0002), so the planner uses them.
    return func.to_tsvector(literal_column("'simple'::regconfig"), column)


def _query(tsquery: str) -> object:
    return func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)


async def search(request: Request, q: str, actor: str) -> dict[str, object]:
    tsquery = ts_query(q)
    if tsquery is None:
        return {"partners": [], "deals": [], "contacts": [], "contacts_error": None}
    async with sessions(request)() as session:
        partners = (await session.execute(
            select(PartnerView.id, PartnerView.name, PartnerView.type, PartnerView.tier)
            .where(_vector(PartnerView.name).op("@@")(_query(tsquery)), PartnerView.archived.is_(False))
            .order_by(PartnerView.name).limit(PER_KIND))).all()
        deals = (await session.execute(
            select(OpportunityView.id, OpportunityView.name, OpportunityView.stage, OpportunityView.outcome,
                   OpportunityView.amount, OpportunityView.currency, OpportunityView.partner_id)
            .where(_vector(OpportunityView.name).op("@@")(_query(tsquery)),
                   OpportunityView.outcome != pc.DELETED_OUTCOME)
            .order_by(OpportunityView.amount.desc(), OpportunityView.id).limit(PER_KIND))).all()
    contacts: list[ct.Contact] = []
    contacts_error = None
    try:
        found = await send(bus(request), ct.ListContacts(q=" ".join(_WORD.findall(q[:MAX_QUERY]))[:200] or None,
                                                         limit=PER_KIND, actor=actor))
        contacts = found.items
    except CommandFailed as exc:
        contacts_error = exc.error.message
    return {"partners": partners, "deals": deals, "contacts": contacts, "contacts_error": contacts_error}


@router.get("/search", response_class=HTMLResponse)
async def search_page(request: Request, principal: Viewer) -> Response:
    q = request.query_params.get("q", "")[:MAX_QUERY]
    results = await search(request, q, principal.name) if q.strip() else None
    return render(request, "search.html", {"q": q, "results": results, "per_kind": PER_KIND})
