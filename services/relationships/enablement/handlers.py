"""The enablement area's command responders (the hourly tick's rescoring runs from contacts.handlers)."""

from contracts import enablement as e
from services.relationships.enablement import service

COMMANDS = (
    (e.ListModules, service.list_modules),
    (e.CreateModule, service.create_module),
    (e.UpdateModule, service.update_module),
    (e.RecordCertification, service.record_certification),
    (e.ListCertifications, service.list_certifications),
    (e.GetPartnerEnablement, service.partner_enablement),
    (e.ListEnablementScores, service.list_scores),
    (e.RefreshEnablement, service.refresh_all),
)
