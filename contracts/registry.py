"""Every stream and event the platform knows, for stream setup and the AsyncAPI document."""

from contracts import (
    billing,
    commissions,
    deadletters,
    deadlines,
    funding,
    pipeline,
    relationships,
    schedules,
    sync,
    week,
)
from contracts.base import Event, StreamSpec

STREAMS: tuple[StreamSpec, ...] = (pipeline.STREAM, sync.STREAM, commissions.STREAM, relationships.STREAM,
                                   billing.STREAM, schedules.STREAM, deadletters.STREAM)
EVENTS: tuple[type[Event], ...] = (*pipeline.EVENTS, *sync.EVENTS, *commissions.EVENTS, *week.EVENTS,
                                   *funding.EVENTS, *deadlines.EVENTS, *billing.EVENTS, *schedules.EVENTS)
