"""Stage sets: the stages of a pipeline in order, with their probabilities, the built-in sets, and the events
and commands that define them, and the one probability rule (`probability_of`)."""

from collections.abc import Iterable, Mapping
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.base import Command, Event, StreamSpec
from contracts.fields import Name
from contracts.pipeline.values import STREAM, Key, Outcome, Percent


class StageDef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    name: Name
    probability: Percent = Field(description="Default win probability in percent.")
    outcome: Outcome = Outcome.open
    launch: bool = Field(default=False, description="Entering this stage is a launch (a won co-sell).")


class StageSet(BaseModel):
    """The stages of one pipeline, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key
    name: Name
    stages: tuple[StageDef, ...] = Field(min_length=2, max_length=30)
    builtin: bool = False
    version: int = 1

    @model_validator(mode="after")
    def _consistent(self) -> "StageSet":
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        if not any(s.outcome == Outcome.open for s in self.stages):
            raise ValueError("a pipeline needs at least one open stage")
        if not any(s.outcome == Outcome.won for s in self.stages):
            raise ValueError("a pipeline needs a won stage")
        if not any(s.outcome == Outcome.lost for s in self.stages):
            raise ValueError("a pipeline needs a lost stage")
        for s in self.stages:
            if s.outcome == Outcome.won and s.probability != 100:
                raise ValueError(f"won stage {s.key!r} must have probability 100")
            if s.outcome == Outcome.lost and s.probability != 0:
                raise ValueError(f"lost stage {s.key!r} must have probability 0")
            if s.launch and s.outcome != Outcome.won:
                raise ValueError(f"launch stage {s.key!r} must be a won stage")
        return self

    def stage(self, key_or_name: str) -> StageDef | None:
        """The first stage whose key or name (case-insensitive) is `key_or_name`."""
        return self._index().get(key_or_name.strip().lower())

    def _index(self) -> dict[str, StageDef]:
        # Looked up several times per opportunity event: an index built once and kept beside the stages it
        # was built from (the model is frozen), built again for a copy whose stages differ (model_copy
        # copies the instance's dict, this entry with it).
        kept = self.__dict__.get("_stage_index")
        if kept is None or kept[0] is not self.stages:
            index: dict[str, StageDef] = {}
            for s in self.stages:
                index.setdefault(s.key, s)
                index.setdefault(s.name.lower(), s)
            kept = self.__dict__["_stage_index"] = (self.stages, index)
        return kept[1]


COSELL = "cosell"
RESALE = "resale"


# The AWS ACE opportunity lifecycle (Lifecycle.Stage), with default win probabilities.
# Named for what it holds, every hyperscaler's co-sell deals (AWS, GCP, Azure): the board's tab, the deal
# page and every other label read this name. Its stages are the AWS ACE lifecycle's, which GCP's map onto.
ACE_STAGE_SET = StageSet(key=COSELL, name="Co-sell", builtin=True, stages=(
    StageDef(key="prospect", name="Prospect", probability=10),
    StageDef(key="qualified", name="Qualified", probability=20),
    StageDef(key="technical_validation", name="Technical Validation", probability=40),
    StageDef(key="business_validation", name="Business Validation", probability=60),
    StageDef(key="committed", name="Committed", probability=80),
    StageDef(key="launched", name="Launched", probability=100, outcome=Outcome.won, launch=True),
    StageDef(key="closed_lost", name="Closed Lost", probability=0, outcome=Outcome.lost),
))


RESALE_STAGE_SET = StageSet(key=RESALE, name="ISV resale", builtin=True, stages=(
    StageDef(key="lead", name="Lead", probability=10),
    StageDef(key="qualified", name="Qualified", probability=25),
    StageDef(key="proposal", name="Proposal", probability=50),
    StageDef(key="negotiation", name="Negotiation", probability=75),
    StageDef(key="won", name="Won", probability=100, outcome=Outcome.won),
    StageDef(key="lost", name="Lost", probability=0, outcome=Outcome.lost),
))


BUILTIN_STAGE_SETS: dict[str, StageSet] = {s.key: s for s in (ACE_STAGE_SET, RESALE_STAGE_SET)}

# ------------------------------------------------------------------------------- the probability rule
# An open deal is weighed by the probability its stage has in the stage set in force *now*, not the
# one carried by the deal's last event: redefining a stage set re-weighs every open deal at once, and
# the gateway's revenue forecast and the commissions forecast (each from its own event-fed copy of the
# stage sets) agree. A stage the set no longer has weighs 0.

Probabilities = Mapping[tuple[str, str], int]


def probabilities_in_force(defined: Iterable[StageSet]) -> dict[tuple[str, str], int]:
    """(pipeline, stage key) → percent: the built-in stage sets, replaced by the ones defined."""
    in_force = {**BUILTIN_STAGE_SETS, **{s.key: s for s in defined}}
    return {(key, st.key): st.probability for key, s in in_force.items() for st in s.stages}


def probability_of(in_force: Probabilities, pipeline: str, stage: str) -> int:
    """The win probability, in percent, an open deal in `stage` of `pipeline` is weighed by."""
    return in_force.get((pipeline, stage), 0)


class StageSetDefinedV1(Event):
    """Sent when a pipeline's stage set is defined or redefined (stages, names, probabilities)."""

    subject: ClassVar[str] = "pipeline.stage_set.defined.v1"
    stream: ClassVar[StreamSpec] = STREAM

    schema_version: Literal[1] = 1
    stage_set: StageSet

    def aggregate_key(self) -> str:
        return f"stage_set:{self.stage_set.key}"


class StageSetList(BaseModel):
    items: list[StageSet]


class ListStageSets(Command):
    """Every pipeline's stage set (the built-in ones, as configured, and custom ones)."""

    subject: ClassVar[str] = "cmd.pipeline.stage_set.list"
    result: ClassVar[type[BaseModel]] = StageSetList


class DefineStageSet(Command):
    """Define a pipeline's stages, or redefine them (stages in use by opportunities must stay)."""

    subject: ClassVar[str] = "cmd.pipeline.stage_set.define"
    result: ClassVar[type[BaseModel]] = StageSet

    key: Key
    name: Name
    stages: tuple[StageDef, ...] = Field(min_length=2, max_length=30)
