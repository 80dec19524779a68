"""What competencies answer on the bus (thin: the command server parses, the service acts)."""

from __future__ import annotations

from contracts import competencies as k
from services.relationships.competencies import service

COMMANDS = (
    (k.CreateCompetency, service.create),
    (k.UpdateCompetency, service.update),
    (k.AddRequirement, service.add_requirement),
    (k.UpdateRequirement, service.update_requirement),
    (k.GetCompetency, service.get),
    (k.ListCompetencies, service.listing),
)
