"""Global search, one function for the page (/search) and the API (GET /api/search): partners and deals from
the gateway's read models (Postgres full text, every typed word matching the start of a word), contacts from
the relationships service (its own search, by command: the gateway holds no copy of contacts).

A partner is found by its name; a deal by its name, customer (account) or external id (ACE/GCP), or by its
owner's name or email; archived and deleted records are left out."""

from __future__ import annotations

import re
from decimal import Decimal
from uuid import UUID

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import func, literal_column, or_, select

from contracts import contacts as ct
from contracts import pipeline as pc
from gateway import people
from gateway.read_models.partners import PartnerView
from gateway.read_models.pipeline import OpportunityView
from gateway.state import bus, sessions
from runtime.commands import send
from runtime.errors import CommandFailed

PER_KIND = 10
MAX_QUERY = 200
MAX_WORDS = 8
# Letters and digits in any script; everything else (quotes, operators, control characters) separates words,
# so nothing a person types reaches to_tsquery as syntax.
_WORD = re.compile(r"\w{1,50}", re.UNICODE)


def words_of(q: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(q[:MAX_QUERY].replace("_", " "))][:MAX_WORDS]


def ts_query(q: str) -> str | None:
    """'acme da' -> 'acme:* & da:*' (every word, each as a prefix), or None when nothing searchable is left."""
    return " & ".join(f"{w}:*" for w in words_of(q)) or None


def _vector(column: object) -> object:
    # 'simple': names are proper nouns, which English stemming would mangle. The same expressions as the
    # GIN indexes (gateway_web_0002, gateway_web_0003), so the planner uses them.
    return func.to_tsvector(literal_column("'simple'::regconfig"), column)


def _query(tsquery: str) -> object:
    return func.to_tsquery(literal_column("'simple'::regconfig"), tsquery)


def _owners_matching(directory: people.Directory, words: list[str]) -> list[str]:
    """Team members every typed word starts a word of (name or email): whose deals a search finds."""
    found = []
    for member in directory.by_id.values():
        own = [w for w in re.split(r"[\W_]+", f"{member.name} {member.email}".lower()) if w]
        if words and all(any(o.startswith(w) for o in own) for w in words):
            found.append(member.id)
    return found


class PartnerHit(BaseModel):
    id: UUID
    name: str
    type: str
    tier: str


class DealHit(BaseModel):
    id: UUID
    name: str
    customer: str | None
    external_id: str | None
    owner: str | None
    stage: str
    outcome: str
    amount: Decimal
    currency: str
    partner_id: UUID | None


class ContactHit(BaseModel):
    id: UUID
    name: str
    title: str | None = None
    partner_id: UUID | None = None
    partner_name: str | None = None


class SearchResults(BaseModel):
    """Up to `per_kind` of each kind: partners by name, deals biggest first, contacts as their service orders
    them. `contacts_error` says why contacts could not be searched (the others are still there)."""

    q: str
    per_kind: int = PER_KIND
    partners: list[PartnerHit] = []
    deals: list[DealHit] = []
    contacts: list[ContactHit] = []
    contacts_error: str | None = None


async def search(request: Request, q: str, actor: str) -> SearchResults:
    q = q[:MAX_QUERY]
    tsquery = ts_query(q)
    if tsquery is None:
        return SearchResults(q=q)
    owners = _owners_matching(await people.directory(request), words_of(q))
    async with sessions(request)() as session:
        partners = (await session.execute(
            select(PartnerView.id, PartnerView.name, PartnerView.type, PartnerView.tier)
            .where(_vector(PartnerView.name).op("@@")(_query(tsquery)), PartnerView.archived.is_(False))
            .order_by(PartnerView.name).limit(PER_KIND))).all()
        matches = _vector(OpportunityView.search_text).op("@@")(_query(tsquery))
        deals = (await session.execute(
            select(OpportunityView.id, OpportunityView.name, OpportunityView.customer, OpportunityView.external_id,
                   OpportunityView.owner, OpportunityView.stage, OpportunityView.outcome, OpportunityView.amount,
                   OpportunityView.currency, OpportunityView.partner_id)
            .where(or_(matches, OpportunityView.owner.in_(owners)) if owners else matches,
                   OpportunityView.outcome != pc.DELETED_OUTCOME)
            .order_by(OpportunityView.amount.desc(), OpportunityView.id).limit(PER_KIND))).all()
    contacts: list[ContactHit] = []
    contacts_error = None
    try:
        found = await send(bus(request), ct.ListContacts(q=" ".join(_WORD.findall(q))[:200] or None,
                                                         limit=PER_KIND, actor=actor))
        contacts = [ContactHit(id=c.id, name=c.name, title=c.title, partner_id=c.partner_id,
                               partner_name=c.partner_name) for c in found.items]
    except CommandFailed as exc:
        contacts_error = exc.error.message
    return SearchResults(q=q, partners=[PartnerHit(**r._mapping) for r in partners],
                         deals=[DealHit(**r._mapping) for r in deals], contacts=contacts,
                         contacts_error=contacts_error)
