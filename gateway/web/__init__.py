"""The server-rendered web UI: one module per area, each with its `router`."""

from fastapi import APIRouter

from gateway.web import (
    account,
    activity,
    admin,
    alerts,
    commissions,
    contacts,
    dashboard,
    docs,
    enablement,
    funding,
    goals,
    imports,
    onboarding,
    partners,
    pipeline,
    portal,
    registrations,
    reviews,
    search,
    session,
    settings,
    sync,
    team,
    week,
)
from gateway.web.common import http_error_page, server_error_page, validation_error_page

router = APIRouter(include_in_schema=False)
for _module in (session, account, dashboard, pipeline, partners, team, imports, admin, settings, commissions,
                funding, goals, week, sync, contacts, alerts, search, portal, registrations, onboarding,
                enablement, reviews, activity):
    router.include_router(_module.router)

__all__ = ["docs", "http_error_page", "router", "server_error_page", "validation_error_page"]
