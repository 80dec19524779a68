"""The REST API, one module per feature; each exposes `router`."""

from fastapi import APIRouter

from gateway.routes import partners

ROUTERS: tuple[APIRouter, ...] = (partners.router,)
