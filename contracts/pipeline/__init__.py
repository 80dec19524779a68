"""Events and commands of the pipeline service, one module per concept: `values` (stream, enumerations,
co-sell state), `stages` (stage sets and the probability rule), `settings`, `partners`,
`opportunities`, `imports` (CSV). Consumers keep writing `from contracts import pipeline as pc`;
this module gathers the names.

Money is `Decimal` with its currency beside it (`contracts/money.py`); quarters are
`contracts/quarters.py`. Times are UTC-aware. Partner and opportunity events carry the whole current
state with a `version` that grows by one on every change, so a consumer can apply them in any order by
keeping the highest version.
"""

from contracts.base import Command, Event
from contracts.pipeline.imports import (
    BeginImport,
    CommitImport,
    ExportPage,
    ExportRows,
    ImportBatch,
    ImportKind,
    ImportProgress,
    ImportResult,
    ImportRows,
    RowError,
)
from contracts.pipeline.opportunities import (
    CreateOpportunity,
    GetOpportunity,
    ListOpportunities,
    MoveOpportunity,
    NextStep,
    Opportunity,
    OpportunityCreatedV1,
    OpportunityDetail,
    OpportunityLaunchedV1,
    OpportunityList,
    OpportunityLostV1,
    OpportunityReopenedV1,
    OpportunitySort,
    OpportunityStageChangedV1,
    OpportunityUpdatedV1,
    OpportunityWonV1,
    StageChange,
    UpdateOpportunity,
)
from contracts.pipeline.partners import (
    ArchivePartner,
    CreatePartner,
    GetPartner,
    ListPartners,
    Partner,
    PartnerArchivedV1,
    PartnerCreatedV1,
    PartnerList,
    PartnerSort,
    PartnerTierChange,
    PartnerTierChangedV1,
    PartnerUpdatedV1,
    RecomputeTiers,
    Scorecard,
    TierRecomputation,
    UpdatePartner,
)
from contracts.pipeline.settings import (
    GetPipelineSettings,
    PipelineSettings,
    PipelineSettingsChangedV1,
    ScorecardWeights,
    TierThresholds,
    UpdatePipelineSettings,
)
from contracts.pipeline.stages import (
    ACE_STAGE_SET,
    BUILTIN_STAGE_SETS,
    COSELL,
    RESALE,
    RESALE_STAGE_SET,
    DefineStageSet,
    ListStageSets,
    StageDef,
    StageSet,
    StageSetDefinedV1,
    StageSetList,
)
from contracts.pipeline.values import (
    STREAM,
    TIER_ORDER,
    AceReviewStatus,
    AceState,
    Criterion,
    DealModel,
    ExternalContact,
    ExternalSource,
    GcpState,
    GcpStatus,
    Hyperscaler,
    Key,
    Outcome,
    PartnerStatus,
    PartnerTier,
    PartnerType,
    Percent,
    Source,
)

EVENTS: tuple[type[Event], ...] = (
    PartnerCreatedV1, PartnerUpdatedV1, PartnerArchivedV1, PartnerTierChangedV1,
    OpportunityCreatedV1, OpportunityUpdatedV1, OpportunityStageChangedV1,
    OpportunityWonV1, OpportunityLostV1, OpportunityLaunchedV1, OpportunityReopenedV1,
    StageSetDefinedV1, PipelineSettingsChangedV1,
)
COMMANDS: tuple[type[Command], ...] = (
    CreatePartner, UpdatePartner, ArchivePartner, GetPartner, ListPartners, RecomputeTiers,
    CreateOpportunity, UpdateOpportunity, MoveOpportunity, GetOpportunity, ListOpportunities,
    ListStageSets, DefineStageSet, GetPipelineSettings, UpdatePipelineSettings,
    BeginImport, ImportRows, CommitImport, ExportRows,
)

__all__ = [
    "ACE_STAGE_SET", "BUILTIN_STAGE_SETS", "COMMANDS", "COSELL", "EVENTS", "RESALE", "RESALE_STAGE_SET", "STREAM",
    "TIER_ORDER", "AceReviewStatus", "AceState", "ArchivePartner", "BeginImport", "CommitImport",
    "CreateOpportunity", "CreatePartner", "Criterion", "DealModel", "DefineStageSet", "ExportPage", "ExportRows",
    "ExternalContact", "ExternalSource", "GcpState", "GcpStatus", "GetOpportunity", "GetPartner",
    "GetPipelineSettings", "Hyperscaler", "ImportBatch", "ImportKind", "ImportProgress", "ImportResult",
    "ImportRows", "Key", "ListOpportunities", "ListPartners", "ListStageSets", "MoveOpportunity", "NextStep",
    "Opportunity", "OpportunityCreatedV1", "OpportunityDetail", "OpportunityLaunchedV1", "OpportunityList",
    "OpportunityLostV1", "OpportunityReopenedV1", "OpportunitySort", "OpportunityStageChangedV1",
    "OpportunityUpdatedV1", "OpportunityWonV1", "Outcome", "Partner", "PartnerArchivedV1", "PartnerCreatedV1",
    "PartnerList", "PartnerSort", "PartnerStatus", "PartnerTier", "PartnerTierChange", "PartnerTierChangedV1",
    "PartnerType", "PartnerUpdatedV1", "Percent", "PipelineSettings", "PipelineSettingsChangedV1",
    "RecomputeTiers", "RowError", "Scorecard", "ScorecardWeights", "Source", "StageChange", "StageDef",
    "StageSet", "StageSetDefinedV1", "StageSetList", "TierRecomputation", "TierThresholds", "UpdateOpportunity",
    "UpdatePartner", "UpdatePipelineSettings",
]
