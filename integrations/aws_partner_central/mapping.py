"""ACE opportunities onto the platform's contract: pure functions, no I/O.

The input is what botocore parsed from `GetOpportunity` and `GetAwsOpportunitySummary` (shapes in the
`partnercentral-selling` model: timestamps are datetimes, amounts are strings). botocore checks types
and required members, not lengths, patterns or enums, so anything here may be hostile: a NUL in a
title, an amount of 31 digits, a currency we do not know, a date in the year 2500. What cannot be
represented is refused with a reason (`Unmappable`) and shown on the sync's health, never published.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from contracts import pipeline as pc
from contracts.fields import CURRENCIES
from contracts.sync import OpportunityExternalUpsertedV1

SOURCE = "aws"
# The event id is a function of (source, id, last-modified): the same version read twice (a retried
# page, a reconciliation, an EventBridge refresh) is the same event, so the broker's Nats-Msg-Id
# de-duplication and the pipeline's inbox both see one.
_EVENT_NAMESPACE = uuid.UUID("7b0c1a52-3d0e-4b53-9a5e-6c2f0a1d9e44")
# How far ahead of our clock a source's last-modified may be (the pipeline refuses later ones).
CLOCK_SKEW = timedelta(minutes=5)
# ExpectedCustomerSpend is monthly; the pipeline's amount is the yearly value of the deal.
MONTHS = 12
MAX_AMOUNT = Decimal("99999999999999.99")  # contracts.money.Amount: 16 digits, 2 places
COMMENTS_MAX = 4000
NAME_MAX = 200

# The model spells one status "In review"; the contract (and ACE's console) "In Review".
_REVIEW = {s.value.lower(): s for s in pc.AceReviewStatus}
_STAGES = {s.name for s in pc.ACE_STAGE_SET.stages}
_SPACES = re.compile(r"[\t\r\n]+")
# The model's own pattern for an amount: up to 31 digits, at most two places.
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,30})(\.[0-9]{0,2})?")


class Unmappable(ValueError):
    """The opportunity cannot be put on the contract; the message says why."""


def event_id(opportunity_id: str, last_modified: datetime) -> uuid.UUID:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{SOURCE}:{opportunity_id}:{last_modified.astimezone(UTC).isoformat()}")


def msg_id(opportunity_id: str, last_modified: datetime) -> str:
    """source:id:last-modified, the identity of one version (the event id is derived from it)."""
    return f"{SOURCE}:{opportunity_id}:{last_modified.astimezone(UTC).isoformat()}"


def _one_line(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unmappable(f"expected text, got {type(value).__name__}")
    value = _SPACES.sub(" ", value).strip()
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value or None


def _clip(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Unmappable(f"expected text, got {type(value).__name__}")
    value = value.strip()
    return (value[: limit - 1] + "…" if len(value) > limit else value) or None


def review_status(value: Any) -> pc.AceReviewStatus | None:
    if value in (None, ""):
        return None
    found = _REVIEW.get(str(value).lower())
    if found is None:
        raise Unmappable(f"unknown review status {str(value)[:40]!r}")
    return found


def yearly_spend(spend: Any) -> tuple[Decimal, str]:
    """The sum of monthly ExpectedCustomerSpend times 12, in the currency of the first entry (entries in another
    currency cannot be added to it and are refused rather than dropped silently)."""
    if not spend:
        return Decimal("0.00"), "USD"
    if not isinstance(spend, list):
        raise Unmappable("ExpectedCustomerSpend is not a list")
    currency = spend[0].get("CurrencyCode") if isinstance(spend[0], Mapping) else None
    total = Decimal(0)
    for entry in spend:
        if not isinstance(entry, Mapping):
            raise Unmappable("ExpectedCustomerSpend holds something other than an entry")
        if entry.get("CurrencyCode") != currency:
            raise Unmappable(f"expected spend in two currencies ({currency} and {entry.get('CurrencyCode')})")
        raw = entry.get("Amount") or "0"
        if not isinstance(raw, str) or not _AMOUNT.fullmatch(raw):
            raise Unmappable(f"expected spend {str(raw)[:40]!r} is not an amount")
        total += Decimal(raw)
    if total * MONTHS > MAX_AMOUNT:
        raise Unmappable(f"expected spend of {total:.2f} a month is beyond any deal the platform can hold")
    total = (total * MONTHS).quantize(Decimal("0.01"))
    if total > MAX_AMOUNT:
        raise Unmappable(f"expected spend of {total} a year is beyond any deal the platform can hold")
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise Unmappable(f"currency {str(currency)[:10]!r} is not one the platform knows")
    return total, currency


def _day(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise Unmappable(f"TargetCloseDate {str(value)[:20]!r} is not a date") from None


def aws_team(summary: Mapping[str, Any] | None) -> tuple[pc.ExternalContact, ...]:
    """AWS's people on the opportunity (GetAwsOpportunitySummary's OpportunityTeam): the relationships
    service makes each a contact linked to the deal. A member whose email cannot be read is left out
    rather than losing the opportunity."""
    out: list[pc.ExternalContact] = []
    for member in ((summary or {}).get("OpportunityTeam") or [])[:50]:
        if not isinstance(member, Mapping):
            continue
        name = " ".join(p for p in (_one_line(member.get("FirstName"), 100), _one_line(member.get("LastName"), 100))
                        if p)
        try:
            out.append(pc.ExternalContact(email=str(member.get("Email") or ""), name=name[:200] or None,
                                          role=_one_line(member.get("BusinessTitle"), 100)))
        except ValidationError:
            continue
    return tuple(out)


def _moment(value: Any, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise Unmappable(f"{what} is missing or not a time")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def to_event(opportunity: Mapping[str, Any], summary: Mapping[str, Any] | None, *,
             now: datetime) -> OpportunityExternalUpsertedV1:
    """The contract event for one ACE opportunity (GetOpportunity) and AWS's side of it
    (GetAwsOpportunitySummary, None when AWS has not engaged yet)."""
    ident = opportunity.get("Id")
    if not isinstance(ident, str) or not re.fullmatch(r"O[0-9]{1,19}", ident):
        raise Unmappable(f"opportunity id {str(ident)[:30]!r} is not an ACE id")
    modified = _moment(opportunity.get("LastModifiedDate"), "LastModifiedDate")
    if modified > now + CLOCK_SKEW:
        raise Unmappable(f"LastModifiedDate {modified.isoformat()} is in the future")
    project = opportunity.get("Project") or {}
    account = (opportunity.get("Customer") or {}).get("Account") or {}
    life = opportunity.get("LifeCycle") or {}
    aws_life = (summary or {}).get("LifeCycle") or {}
    stage = life.get("Stage") or "Prospect"
    if stage not in _STAGES:
        raise Unmappable(f"unknown stage {str(stage)[:40]!r}")
    amount, currency = yearly_spend(project.get("ExpectedCustomerSpend"))
    comments = [c for c in (life.get("ReviewStatusReason"), life.get("ReviewComments")) if c]
    try:
        ace = pc.AceState(
            review_status=review_status(life.get("ReviewStatus")),
            reviewer_comments=_clip("\n".join(str(c) for c in comments), COMMENTS_MAX) if comments else None,
            next_steps=_clip(life.get("NextSteps") or aws_life.get("NextSteps"), 255),
            closed_lost_reason=_one_line(life.get("ClosedLostReason") or aws_life.get("ClosedLostReason"), 200),
            team=aws_team(summary),
        )
        return OpportunityExternalUpsertedV1(
            event_id=event_id(ident, modified),
            source=SOURCE,
            external_id=ident,
            last_modified=modified,
            created_at=_moment(opportunity.get("CreatedDate"), "CreatedDate") if opportunity.get("CreatedDate")
            else None,
            name=_one_line(project.get("Title"), NAME_MAX) or f"ACE {ident}",
            customer=_one_line(account.get("CompanyName"), NAME_MAX) or "(customer not named in ACE)",
            stage=stage,
            pipeline=pc.COSELL,
            amount=amount,
            currency=currency,
            expected_close_date=_day(life.get("TargetCloseDate")),
            deal_model=pc.DealModel.cosell,
            ace=ace,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Unmappable(f"{where}: {first['msg']}") from None
