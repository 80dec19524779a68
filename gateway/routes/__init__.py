"""The REST API, one module per feature; each exposes `router`."""

from fastapi import APIRouter

from gateway.routes import access, commissions, partners, pipeline

ROUTERS: tuple[APIRouter, ...] = (access.router, partners.router, pipeline.router, commissions.router)
