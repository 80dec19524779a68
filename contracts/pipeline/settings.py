"""What the department configures about its pipeline (fiscal calendar, target, tiers, scorecard, exchange
rates) and the event and commands that change it."""

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Currency, Version, line
from contracts.money import Amount
from contracts.pipeline.stages import RESALE
from contracts.pipeline.values import STREAM, Key, PartnerTier, Percent


class TierThresholds(BaseModel):
    """Trailing won revenue (reporting currency) at which a partner reaches each tier; bronze is the floor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Sized for a program of about $1M a year across 20+ ISVs; a setting, so change them to yours.
    silver: Amount = Decimal("20000.00")
    gold: Amount = Decimal("50000.00")
    platinum: Amount = Decimal("100000.00")

    @model_validator(mode="after")
    def _increasing(self) -> "TierThresholds":
        if not Decimal(0) < self.silver < self.gold < self.platinum:
            raise ValueError("tier thresholds must increase: 0 < silver < gold < platinum")
        return self


RatePercent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4,
                                      description="percent: 12.5 means 12.5%")]
Benefit = line(200, 1)


class TierBenefits(BaseModel):
    """What one tier gives a partner: its benefits, each in a line, and its commission rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    benefits: tuple[Benefit, ...] = Field(default=(), max_length=20)
    commission_rate: RatePercent | None = Field(
        default=None, description="the program's commission rate at this tier; an agreement of kind "
        "`partner_tier` made from the tier table starts with these rates")


class TierBenefitTable(BaseModel):
    """The tier table's benefits and commission rates, beside its thresholds (`TierThresholds`): the one
    place that says what each tier means. Each tier lists all it gives (not only what it adds), so a tier
    change can say what the partner gains and loses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bronze: TierBenefits = TierBenefits(
        benefits=("Partner portal and deal registration", "Enablement library"), commission_rate=Decimal(10))
    silver: TierBenefits = TierBenefits(
        benefits=("Partner portal and deal registration", "Enablement library", "Quarterly business review",
                  "Co-marketing funds (MDF) on request"), commission_rate=Decimal(15))
    gold: TierBenefits = TierBenefits(
        benefits=("Partner portal and deal registration", "Enablement library", "Monthly business review",
                  "Co-marketing funds (MDF) on request", "Named partner manager", "Joint account planning"),
        commission_rate=Decimal(20))
    platinum: TierBenefits = TierBenefits(
        benefits=("Partner portal and deal registration", "Enablement library", "Monthly business review",
                  "Co-marketing funds (MDF) on request", "Named partner manager", "Joint account planning",
                  "Executive sponsor", "Priority co-sell with the hyperscalers"), commission_rate=Decimal(25))

    def of(self, tier: PartnerTier) -> TierBenefits:
        return getattr(self, tier.value)  # type: ignore[no-any-return]


class TierChange(BaseModel):
    """What a partner gains and loses moving from one tier to another (up or down)."""

    from_tier: PartnerTier
    to_tier: PartnerTier
    gains: list[str]
    loses: list[str]
    rate_from: Decimal | None
    rate_to: Decimal | None


def tier_change(table: TierBenefitTable, from_tier: PartnerTier, to_tier: PartnerTier) -> TierChange:
    before, after = table.of(from_tier), table.of(to_tier)
    return TierChange(from_tier=from_tier, to_tier=to_tier,
                      gains=[b for b in after.benefits if b not in before.benefits],
                      loses=[b for b in before.benefits if b not in after.benefits],
                      rate_from=before.commission_rate, rate_to=after.commission_rate)


class ScorecardWeights(BaseModel):
    """The playbook's partner selection weights, in percent; they add up to 100."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategic_fit: Percent = 30
    revenue_potential: Percent = 25
    feasibility: Percent = 25
    risk: Percent = 20

    @model_validator(mode="after")
    def _hundred(self) -> "ScorecardWeights":
        total = self.strategic_fit + self.revenue_potential + self.feasibility + self.risk
        if total != 100:
            raise ValueError(f"weights must add up to 100, not {total}")
        return self


class PipelineSettings(BaseModel):
    """What the department configures about its pipeline: fiscal calendar, target, tiers, scorecard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    reporting_currency: Currency = "USD"
    quarterly_target: Amount = Decimal("250000.00")
    forecast_pipelines: tuple[Key, ...] = Field(default=(RESALE,), min_length=1, max_length=20,
                                                description="Pipelines whose revenue counts toward the target.")
    stuck_after_days: int = Field(default=30, ge=1, le=3650)
    tier_window_days: int = Field(default=365, ge=1, le=3650,
                                  description="Trailing window of won revenue that sets a partner's tier.")
    tier_thresholds: TierThresholds = TierThresholds()
    tier_benefits: TierBenefitTable = TierBenefitTable()
    scorecard_weights: ScorecardWeights = ScorecardWeights()
    feasibility_from_enablement: bool = Field(
        default=False, description="A partner's feasibility criterion follows its enablement score (0-100 as 0-10; "
        "contracts/enablement.py) instead of being set by hand.")
    # 1 unit of the currency = rate units of the reporting currency. Amounts in currencies without a
    # rate are reported on their own and count toward nothing.
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] = Field(
        default_factory=dict, max_length=200)
    version: int = 0


class PipelineSettingsChangedV1(Event):
    """Sent when the pipeline settings change (fiscal year, target, tiers, scorecard weights, rates)."""

    subject: ClassVar[str] = "pipeline.settings.changed.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    settings: PipelineSettings

    def aggregate_key(self) -> str:
        return "settings:pipeline"


class GetPipelineSettings(Command):
    """The current pipeline settings."""

    subject: ClassVar[str] = "cmd.pipeline.settings.get"
    result: ClassVar[type[BaseModel]] = PipelineSettings


class UpdatePipelineSettings(PartialCommand):
    """Change pipeline settings; only the fields sent change. Tier settings recompute every tier."""

    subject: ClassVar[str] = "cmd.pipeline.settings.update"
    result: ClassVar[type[BaseModel]] = PipelineSettings

    expected_version: Version | None = None
    fiscal_year_start_month: int | None = Field(default=None, ge=1, le=12)
    reporting_currency: Currency | None = None
    quarterly_target: Amount | None = None
    forecast_pipelines: tuple[Key, ...] | None = Field(default=None, min_length=1, max_length=20)
    stuck_after_days: int | None = Field(default=None, ge=1, le=3650)
    tier_window_days: int | None = Field(default=None, ge=1, le=3650)
    tier_thresholds: TierThresholds | None = None
    tier_benefits: TierBenefitTable | None = None
    scorecard_weights: ScorecardWeights | None = None
    feasibility_from_enablement: bool | None = None
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] | None = Field(
        default=None, max_length=200)
