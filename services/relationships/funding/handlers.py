"""What funding answers on the bus (thin: the command server parses, the service acts)."""

from __future__ import annotations

from contracts import funding as f
from services.relationships.funding import service

COMMANDS = (
    (f.ListPrograms, service.list_programs),
    (f.DefineProgram, service.define_program),
    (f.CreateFundRequest, service.create_request),
    (f.UpdateFundRequest, service.update_request),
    (f.MoveFundRequest, service.move_request),
    (f.AddMilestone, service.add_milestone),
    (f.UpdateMilestoneClaim, service.update_claim),
    (f.GetFundRequest, service.get_request),
    (f.ListFundRequests, service.list_requests),
    (f.GetFundingRollup, service.rollup),
)
