"""A deal made in PartnerOps as ACE's CreateOpportunity wants it, and the model's own limits on it: pure
functions, no I/O (the service model is botocore's data, read once).

botocore checks a request's types and required members but not the model's enums, patterns or
lengths; AWS would refuse such a request only after it was sent. So a share is checked here against
the same model first, and what AWS would refuse is refused at once, with the field named."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape

from contracts import sync

SERVICE = "partnercentral-selling"
MONTHS = 12
SOLUTIONS = "Solutions"
# What we ask of AWS when we submit: co-sell with it, our details visible to its sellers.
SUBMISSION = {"InvolvementType": "Co-Sell", "Visibility": "Full"}
# Where in CreateOpportunity each field of ShareDealToAce goes (to name the field AWS would refuse).
FIELD_OF = {"Customer.Account.CompanyName": "customer", "Customer.Account.WebsiteUrl": "website",
            "Customer.Account.Address.CountryCode": "country_code", "Project.Title": "name",
            "Project.CustomerBusinessProblem": "business_problem", "LifeCycle.Stage": "stage",
            "LifeCycle.TargetCloseDate": "expected_close_date", "LifeCycle.NextSteps": "next_steps",
            "Project.ExpectedCustomerSpend[0].CurrencyCode": "currency",
            "Project.ExpectedCustomerSpend[0].Amount": "amount"}


@cache
def model() -> ServiceModel:
    return botocore.session.get_session().get_service_model(SERVICE)


def client_token(deal_id: object, attempt: int = 0) -> str:
    """The same deal's CreateOpportunity carries the same token on every retry (AWS answers a repeat
    with the opportunity the first call made); a share asked for again after a refusal is a new try."""
    return f"partnerops-{deal_id}" + (f"-{attempt}" if attempt else "")


def monthly(amount: Decimal) -> str:
    """ExpectedCustomerSpend is monthly; the deal's amount is yearly."""
    return str((amount / MONTHS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def create_request(cmd: sync.ShareDealToAce) -> dict[str, Any]:
    """CreateOpportunity's parameters for a deal (without Catalog and ClientToken)."""
    account: dict[str, Any] = {"CompanyName": cmd.customer}
    if cmd.website:
        account["WebsiteUrl"] = cmd.website
    if cmd.country_code:
        account["Address"] = {"CountryCode": cmd.country_code}
    project: dict[str, Any] = {
        "Title": cmd.name[:255],
        "ExpectedCustomerSpend": [{"Amount": monthly(cmd.amount), "CurrencyCode": cmd.currency,
                                   "Frequency": "Monthly", "TargetCompany": "AWS"}],
    }
    if cmd.business_problem:
        project["CustomerBusinessProblem"] = cmd.business_problem
    life: dict[str, Any] = {"Stage": cmd.stage}
    if cmd.expected_close_date:
        life["TargetCloseDate"] = cmd.expected_close_date.isoformat()
    if cmd.next_steps:
        life["NextSteps"] = cmd.next_steps
    return {
        "Origin": "Partner Referral",
        "OpportunityType": "Net New Business",
        # Our id on AWS's record: a person at AWS (or a later reconciliation) can tell whose deal it is.
        "PartnerOpportunityIdentifier": str(cmd.deal_id),
        "Customer": {"Account": account},
        "Project": project,
        "LifeCycle": life,
    }


def refusals(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, why) for each value the operation's input shape refuses by enum, pattern or length."""
    out: list[tuple[str, str]] = []
    _check(model().operation_model(operation).input_shape, params, "", out)
    return out


@cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # the model's Java-style classes (\p{L}) Python does not read: left to AWS
        return None


def _check(shape: Shape, value: Any, where: str, out: list[tuple[str, str]]) -> None:
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                _check(member, value[name], f"{where}.{name}" if where else name, out)
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            _check(shape.member, item, f"{where}[{i}]", out)
    elif shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            out.append((where, f"{value[:60]!r} is not one of AWS's values ({', '.join(enum[:12])}"
                               f"{', …' if len(enum) > 12 else ''})"))
        pattern = _pattern(shape.metadata["pattern"]) if "pattern" in shape.metadata else None
        if pattern is not None and not pattern.fullmatch(value):
            out.append((where, f"{value[:60]!r} is not in the form AWS accepts"))
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            out.append((where, f"must be {low or 0} to {high or '…'} characters"))
