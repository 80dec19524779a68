"""Partner onboarding (the relationships service): a template of steps — the channel playbook's four
weeks by default, editable — instantiated as a plan for every new partner, with an owner, a due date
and completion per step; time from a partner's start to its first opportunity.

A step's due date is a deadline (contracts/deadlines.py, kind `onboarding_step_due`): open until the
step is done, so a late step stands on its owner's attention list like any deadline that costs
something.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from contracts.base import Command, PartialCommand
from contracts.fields import Day, Offset, Person, line
from contracts.pipeline import PartnerType

StepKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="Stable within a template.")]
MAX_STEPS = 60


class TemplateStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: StepKey
    title: line(200, 1)
    week: int = Field(ge=1, le=52, description="Due at the end of this week of onboarding (week 1 = days 1-7).")
    owner: Person | None = Field(default=None, description="A team member (user id); none: the partner's owner.")


# The playbook's "Partner Success Framework": four weeks, four steps each.
PLAYBOOK_STEPS: tuple[TemplateStep, ...] = tuple(
    TemplateStep(key=key, title=title, week=week) for week, steps in enumerate((
        (("agreement_signed", "Partnership agreement signed"), ("access_provided", "Access credentials provided"),
         ("training_scheduled", "Initial training scheduled"), ("metrics_established", "Success metrics established")),
        (("product_training", "Product training"), ("sales_training", "Sales training"),
         ("technical_training", "Technical training"), ("certification_exam", "Certification exam passed")),
        (("sales_materials", "Sales materials provided"), ("demo_environment", "Demo environment set up"),
         ("marketing_assets", "Marketing assets delivered"), ("cosell_trained", "Co-selling process trained")),
        (("first_opportunities", "First opportunities identified"), ("joint_marketing", "Joint marketing activities"),
         ("tracking_active", "Performance tracking active"), ("checkins_scheduled", "Regular check-ins scheduled")),
    ), start=1) for key, title in steps)


def unique_keys(steps: tuple[TemplateStep, ...]) -> tuple[TemplateStep, ...]:
    keys = [s.key for s in steps]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ValueError(f"step keys must be unique: {', '.join(dupes)} repeated")
    return steps


Steps = Annotated[tuple[TemplateStep, ...], Field(min_length=1, max_length=MAX_STEPS), AfterValidator(unique_keys)]


class OnboardingTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Steps
    version: int = 0


DEFAULT_TEMPLATE = OnboardingTemplate(steps=PLAYBOOK_STEPS)


class PlanStep(BaseModel):
    key: str
    title: str
    week: int
    owner: str | None
    due_date: date
    done_at: datetime | None
    done_by: str | None
    overdue: bool = Field(description="Not done and its due date has passed (UTC).")


class OnboardingPlan(BaseModel):
    id: UUID
    version: int
    partner_id: UUID
    partner_name: str
    partner_type: PartnerType
    started_on: date
    steps: list[PlanStep]
    done: int = Field(description="Steps done.")
    overdue: int = Field(description="Steps not done past their due date.")
    first_opportunity_at: datetime | None = Field(description="When the partner's first opportunity was created.")
    days_to_first_opportunity: int | None = Field(description="Whole days from the start to the first opportunity.")


class OnboardingPlanList(BaseModel):
    items: list[OnboardingPlan]
    total: int = Field(description="Plans matching the filter.")
    offset: int
    limit: int


class FirstOpportunityByType(BaseModel):
    partner_type: PartnerType
    partners: int = Field(description="Partners with an onboarding plan.")
    with_opportunity: int = Field(description="Of them, partners with at least one opportunity.")
    median_days: float | None = Field(description="Median whole days from start to first opportunity.")
    average_days: float | None = Field(description="Average whole days from start to first opportunity.")


class FirstOpportunityStats(BaseModel):
    by_type: list[FirstOpportunityByType]
    overall: FirstOpportunityByType | None = Field(description="Every type together (partner_type of the first).")


class GetOnboardingTemplate(Command):
    subject: ClassVar[str] = "cmd.relationships.onboarding.template.get"
    result: ClassVar[type[BaseModel]] = OnboardingTemplate


class SetOnboardingTemplate(Command):
    """Replace the template: plans made from now on follow it; existing plans keep theirs."""

    subject: ClassVar[str] = "cmd.relationships.onboarding.template.set"
    result: ClassVar[type[BaseModel]] = OnboardingTemplate

    steps: Steps
    expected_version: int | None = Field(default=None, ge=0, le=2_147_483_647)


class GetOnboardingPlan(Command):
    subject: ClassVar[str] = "cmd.relationships.onboarding.plan.get"
    result: ClassVar[type[BaseModel]] = OnboardingPlan

    partner_id: UUID


class ListOnboardingPlans(Command):
    """Plans, those with overdue steps first, then by start (newest first)."""

    subject: ClassVar[str] = "cmd.relationships.onboarding.plan.list"
    result: ClassVar[type[BaseModel]] = OnboardingPlanList

    open_only: bool = Field(default=False, description="Only plans with steps still to do.")
    owner: Person | None = Field(default=None, description="Only plans with a step this person owns.")
    offset: Offset = 0
    limit: int = Field(default=50, ge=1, le=500)


class UpdateOnboardingStep(PartialCommand):
    """Mark a step done (or not), or give it another owner or due date; only the fields sent change."""

    subject: ClassVar[str] = "cmd.relationships.onboarding.step.update"
    result: ClassVar[type[BaseModel]] = OnboardingPlan

    partner_id: UUID
    key: StepKey
    done: bool | None = None
    owner: Person | None = None
    due_date: Day | None = None
    expected_version: int | None = Field(default=None, ge=1, le=2_147_483_647)


class GetFirstOpportunityStats(Command):
    subject: ClassVar[str] = "cmd.relationships.onboarding.first_opportunity"
    result: ClassVar[type[BaseModel]] = FirstOpportunityStats


COMMANDS: tuple[type[Command], ...] = (GetOnboardingTemplate, SetOnboardingTemplate, GetOnboardingPlan,
                                       ListOnboardingPlans, UpdateOnboardingStep, GetFirstOpportunityStats)
