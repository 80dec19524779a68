"""Pipeline KPIs from the pipeline's events: opportunities as last described, stage probabilities,
settings, and small aggregates the KPI endpoint reads instead of scanning every opportunity.

Each opportunity event carries the whole opportunity and its version. A batch of events is applied
at once: the stored rows are read (locked, in id order), each opportunity's old contribution to the
aggregates is subtracted and its new one added, netted over the batch, and written in key order. A
snapshot older than the stored one changes nothing, so events may arrive in any order, and a replay
rebuilds the same figures.

One module per concept: `tables`, `writing` (events in), `arr`, `reading` (KPIs out), `snapshots`;
this module gathers the names the gateway uses.
"""

from gateway.read_models.pipeline.arr import (
    arr_window,
    ensure_arr_window,
)
from gateway.read_models.pipeline.reading import (
    Launches,
    PartnerArr,
    PipelineKpis,
    PipelineOutcomes,
    StageFigure,
    Stuck,
    StuckDeal,
    kpis,
)
from gateway.read_models.pipeline.snapshots import (
    SNAPSHOT_TOP,
    _refresher,
    kpi_scope,
    kpis_changed,
    kpis_json,
)
from gateway.read_models.pipeline.tables import (
    AGGREGATES,
    MONEY,
    READ_MODEL_TABLES,
    ArrWindow,
    ClosedAgg,
    LaunchAgg,
    OpenAgg,
    OpportunityView,
    PartnerArrCurrency,
    PartnerArrTotal,
    PartnerWonAgg,
    SettingsView,
    StageView,
    StuckAgg,
    settings_of,
    stage_sets,
)
from gateway.read_models.pipeline.writing import (
    RECOUNT,
    SUBSCRIPTIONS,
    _previous_stage,
    aggregate_drift,
    on_opportunities,
    on_opportunity,
    on_settings,
    on_stage_set,
    recount,
)

__all__ = [
    "AGGREGATES",
    "MONEY",
    "READ_MODEL_TABLES",
    "RECOUNT",
    "SNAPSHOT_TOP",
    "SUBSCRIPTIONS",
    "ArrWindow",
    "ClosedAgg",
    "LaunchAgg",
    "Launches",
    "OpenAgg",
    "OpportunityView",
    "PartnerArr",
    "PartnerArrCurrency",
    "PartnerArrTotal",
    "PartnerWonAgg",
    "PipelineKpis",
    "PipelineOutcomes",
    "SettingsView",
    "StageFigure",
    "StageView",
    "Stuck",
    "StuckAgg",
    "StuckDeal",
    "_previous_stage",
    "_refresher",
    "aggregate_drift",
    "arr_window",
    "ensure_arr_window",
    "kpi_scope",
    "kpis",
    "kpis_changed",
    "kpis_json",
    "on_opportunities",
    "on_opportunity",
    "on_settings",
    "on_stage_set",
    "recount",
    "settings_of",
    "stage_sets",
]
