"""What the relationships service answers on the bus: a composition of its areas' commands and
subscriptions (the team's week, contacts, funding), each from its own package, plus the copy of the
pipeline they share. Thin: each area parses, calls its service, returns."""

from contracts import relationships
from runtime.service import ServiceDefinition
from services.relationships import (
    activity,
    competencies,
    enablement,
    funding,
    goals,
    onboarding,
    pipeline_copy,
    reviews,
    week,
)
from services.relationships.contacts import handlers as contacts

definition = ServiceDefinition(
    name="relationships",
    publishes=(relationships.STREAM,),
    subscriptions=(
        *pipeline_copy.SUBSCRIPTIONS,
        *contacts.SUBSCRIPTIONS,
    ),
    commands=(
        *week.COMMANDS,
        *funding.COMMANDS,
        *goals.COMMANDS,
        *competencies.COMMANDS,
        *contacts.COMMANDS,
        *onboarding.COMMANDS,
        *enablement.COMMANDS,
        *reviews.COMMANDS,
        *activity.COMMANDS,
    ),
)
