"""Partner activity and quality per month (the relationships service).

Activity is counted from the service's copy of the pipeline and its logged interactions:
- leads: deals created with the partner;
- opportunities: deals of the partner moved into a qualified stage (`qualified`);
- demos: moved into a technical validation stage (`technical_validation`, the co-sell stage of demos
  and proofs of concept);
- proposals: moved into `proposal` (resale) or `business_validation` (co-sell);
- meetings: meetings logged with the partner's contacts.

Quality is entered (or imported) per partner and month: lead quality (0-10), customer satisfaction
(0-100) and implementation success (percent of implementations that succeeded, 0-100).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field

from contracts.base import Command, PartialCommand

STAGES: dict[str, tuple[str, ...]] = {"opportunities": ("qualified",), "demos": ("technical_validation",),
                                      "proposals": ("proposal", "business_validation")}
MAX_MONTHS = 36
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month(value: str) -> str:
    found = _MONTH.match(value)
    if not found or not 1900 <= int(found[1]) <= 2200:
        raise ValueError("write a month like 2026-11")
    return value


Month = Annotated[str, Field(min_length=7, max_length=7, examples=["2026-11"]), AfterValidator(_month)]
LeadQuality = Annotated[Decimal, Field(ge=0, le=10, max_digits=4, decimal_places=2)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


class MonthFigures(BaseModel):
    month: str
    leads: int
    opportunities: int
    demos: int
    proposals: int
    meetings: int
    lead_quality: Decimal | None
    customer_satisfaction: Decimal | None
    implementation_success: Decimal | None


class PartnerActivity(BaseModel):
    partner_id: UUID
    months: list[MonthFigures] = Field(description="Oldest first, ending with the month given.")


class GetPartnerActivity(Command):
    subject: ClassVar[str] = "cmd.relationships.activity.get"
    result: ClassVar[type[BaseModel]] = PartnerActivity

    partner_id: UUID
    until: Month
    months: int = Field(default=12, ge=1, le=MAX_MONTHS)


class SetPartnerQuality(PartialCommand):
    """A partner's quality figures for a month; only the fields sent change (null clears one)."""

    subject: ClassVar[str] = "cmd.relationships.activity.quality.set"
    result: ClassVar[type[BaseModel]] = MonthFigures

    partner_id: UUID
    month: Month
    lead_quality: LeadQuality | None = None
    customer_satisfaction: Percent | None = None
    implementation_success: Percent | None = None


COMMANDS: tuple[type[Command], ...] = (GetPartnerActivity, SetPartnerQuality)
