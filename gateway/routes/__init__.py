"""The REST API, one module per feature; each exposes `router`."""

from fastapi import APIRouter

from gateway import calendar_feed
from gateway.routes import (
    access,
    activity,
    alerts,
    commissions,
    contacts,
    enablement,
    funding,
    goals,
    onboarding,
    partners,
    pipeline,
    portal,
    registrations,
    reviews,
    search,
    sync,
    week,
)

ROUTERS: tuple[APIRouter, ...] = (access.router, partners.router, pipeline.router, commissions.router, funding.router,
                                  goals.router, week.router, calendar_feed.router, sync.router, contacts.router,
                                  alerts.router, registrations.router, portal.router, onboarding.router,
                                  enablement.router, search.router, reviews.router,
                                  activity.router)
