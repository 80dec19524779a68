"""The onboarding area's command responders (the plans themselves start from pipeline_copy's partner events)."""

from contracts import onboarding as o
from services.relationships.onboarding import service

COMMANDS = (
    (o.GetOnboardingTemplate, service.get_template),
    (o.SetOnboardingTemplate, service.set_template),
    (o.GetOnboardingPlan, service.get_plan),
    (o.ListOnboardingPlans, service.list_plans),
    (o.UpdateOnboardingStep, service.update_step),
    (o.GetFirstOpportunityStats, service.first_opportunity_stats),
)
