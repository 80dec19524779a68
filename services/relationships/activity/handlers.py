"""The activity area's command responders."""

from contracts import activity as a
from services.relationships.activity import service

COMMANDS = ((a.GetPartnerActivity, service.activity), (a.SetPartnerQuality, service.set_quality))
