"""ACE opportunities as botocore returns them (shapes of the `partnercentral-selling` model), for the
Stubber and the fake endpoint."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

_ids = itertools.count(int(datetime.now(UTC).timestamp() * 1000) % 10**12)


def new_id() -> str:
    return f"O{next(_ids)}"


def opportunity(ident: str | None = None, *, modified: datetime | None = None, title: str = "Data platform migration",
                company: str = "Globex", stage: str = "Qualified", review: str | None = "Approved",
                monthly: str = "1000.00", currency: str = "USD", **life: Any) -> dict[str, Any]:
    modified = modified or datetime.now(UTC) - timedelta(hours=1)
    return {
        "Catalog": "Sandbox",
        "Id": ident or new_id(),
        "LastModifiedDate": modified,
        "CreatedDate": modified - timedelta(days=10),
        "RelatedEntityIdentifiers": {},
        "Project": {"Title": title, "ExpectedCustomerSpend": [
            {"Amount": monthly, "CurrencyCode": currency, "Frequency": "Monthly", "TargetCompany": "AWS"}]},
        "Customer": {"Account": {"CompanyName": company}},
        "LifeCycle": {"Stage": stage, **({"ReviewStatus": review} if review else {}), **life},
    }


def summary_of(opp: dict[str, Any]) -> dict[str, Any]:
    """The ListOpportunities summary of a GetOpportunity answer."""
    return {"Catalog": opp["Catalog"], "Id": opp["Id"], "LastModifiedDate": opp["LastModifiedDate"],
            "CreatedDate": opp["CreatedDate"], "LifeCycle": {"Stage": opp["LifeCycle"].get("Stage", "Prospect")},
            "Customer": {"Account": {"CompanyName": opp["Customer"]["Account"]["CompanyName"]}}}


def aws_summary(opp: dict[str, Any], involvement: str = "Co-Sell") -> dict[str, Any]:
    return {"Catalog": opp["Catalog"], "RelatedOpportunityId": opp["Id"], "InvolvementType": involvement,
            "Origin": "Partner Referral", "LifeCycle": {"Stage": "Qualify"},
            "OpportunityTeam": [{"Email": "pdm@amazon.example", "FirstName": "Pat", "LastName": "Dee",
                                 "BusinessTitle": "PDM"}]}
