"""Every stream and event the platform knows, for stream setup and the AsyncAPI document."""

from contracts import (
    billing,
    commissions,
    competencies,
    contacts,
    deadletters,
    deadlines,
    enablement,
    funding,
    goals,
    pipeline,
    registrations,
    relationships,
    schedules,
    sync,
    week,
)
from contracts.base import Event, StreamSpec

STREAMS: tuple[StreamSpec, ...] = (pipeline.STREAM, sync.STREAM, commissions.STREAM, relationships.STREAM,
                                   billing.STREAM, schedules.STREAM, deadletters.STREAM)
EVENTS: tuple[type[Event], ...] = (*pipeline.EVENTS, *registrations.EVENTS, *sync.EVENTS, *commissions.EVENTS,
                                   *week.EVENTS, *funding.EVENTS, *goals.EVENTS,
                                   *competencies.EVENTS, *deadlines.EVENTS, *enablement.EVENTS, *contacts.EVENTS,
                                   *billing.EVENTS,
                                   *schedules.EVENTS)
