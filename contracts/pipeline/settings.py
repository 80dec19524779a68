"""What the department configures about its pipeline (fiscal calendar, target, tiers, scorecard, exchange
rates) and the event and commands that change it."""

from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, PartialCommand, StreamSpec
from contracts.fields import Currency, Version
from contracts.money import Amount
from contracts.pipeline.stages import RESALE
from contracts.pipeline.values import STREAM, Key, Percent


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
    scorecard_weights: ScorecardWeights | None = None
    feasibility_from_enablement: bool | None = None
    fx_rates: dict[Currency, Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]] | None = Field(
        default=None, max_length=200)
