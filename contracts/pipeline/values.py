"""Values of the pipeline: its stream, partner and deal enumerations, and the hyperscaler side of a co-sell deal."""

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from contracts.base import StreamSpec
from contracts.fields import Day, line, text

STREAM = StreamSpec(
    name="PIPELINE",
    subjects=("pipeline.>",),
    description="Facts about partners, opportunities, stage sets and pipeline settings, from the pipeline service.",
)


Percent = Annotated[int, Field(ge=0, le=100)]


# A criterion of the scorecard: 0 (worst) to 10 (best), at most two decimals.
Criterion = Annotated[Decimal, Field(ge=0, le=10, max_digits=4, decimal_places=2)]


Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class PartnerType(StrEnum):
    isv = "isv"
    hyperscaler = "hyperscaler"
    referral = "referral"
    reseller = "reseller"
    msp = "msp"
    cosell = "cosell"


class PartnerTier(StrEnum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"
    platinum = "platinum"


TIER_ORDER: tuple[PartnerTier, ...] = (PartnerTier.bronze, PartnerTier.silver, PartnerTier.gold,
                                       PartnerTier.platinum)


class PartnerStatus(StrEnum):
    prospect = "prospect"
    onboarding = "onboarding"
    active = "active"
    inactive = "inactive"


class DealModel(StrEnum):
    resale = "resale"
    referral = "referral"
    cosell = "cosell"
    msp = "msp"


class Source(StrEnum):
    """Where an opportunity comes from."""

    manual = "manual"
    aws = "aws"
    gcp = "gcp"
    azure = "azure"
    import_ = "import"


class ExternalSource(StrEnum):
    """The systems sync workers publish from."""

    aws = "aws"
    gcp = "gcp"
    azure = "azure"


class Hyperscaler(StrEnum):
    aws = "aws"
    gcp = "gcp"
    azure = "azure"


class Outcome(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class AceReviewStatus(StrEnum):
    """AWS Partner Central's Lifecycle.ReviewStatus, spelled as ACE spells it."""

    pending_submission = "Pending Submission"
    submitted = "Submitted"
    in_review = "In Review"
    action_required = "Action Required"
    approved = "Approved"
    rejected = "Rejected"


class GcpStatus(StrEnum):
    """Google Cloud Partner Advantage's opportunity status."""

    draft = "Draft"
    submitted = "Submitted"
    accepted = "Accepted"
    not_accepted = "Not Accepted"


class ExternalContact(BaseModel):
    """A person at the hyperscaler named on a co-sell opportunity (ACE's AWS opportunity team, the GCP
    account owner). The relationships service makes each a contact linked to the deal."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
    name: line(200) | None = None
    role: line(100, description="As the source spells it (ACE's BusinessTitle: PDM, AWSAccountOwner).") | None = None


class AceState(BaseModel):
    """The AWS ACE side of a co-sell opportunity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    review_status: AceReviewStatus | None = None
    reviewer_comments: text(4000) | None = None
    # "Action Required" is a deadline: the date by which the partner must answer the reviewer.
    action_due_date: Day | None = None
    next_steps: text(255) | None = None
    closed_lost_reason: line(200) | None = None
    team: tuple[ExternalContact, ...] = Field(default=(), max_length=50,
                                              description="AWS people on the opportunity (AwsOpportunityTeam).")


class GcpState(BaseModel):
    """The Google Cloud side of a co-sell opportunity."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: GcpStatus | None = None
    stage: line(100, description="GCP's own stage name, as sent.") | None = None
    team: tuple[ExternalContact, ...] = Field(default=(), max_length=50,
                                              description="Google people on the opportunity (the account owner).")
