"""What the pipeline service answers on the bus."""

from __future__ import annotations

from contracts import pipeline as c
from runtime.service import ServiceDefinition
from services.pipeline import service

definition = ServiceDefinition(
    name="pipeline",
    publishes=(c.STREAM,),
    commands=(
        (c.CreatePartner, service.create_partner),
        (c.GetPartner, service.get_partner),
        (c.ListPartners, service.list_partners),
    ),
)
