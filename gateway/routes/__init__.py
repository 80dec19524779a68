"""The REST API, one module per feature; each exposes `router`."""

from fastapi import APIRouter

from gateway.routes import access, partners

ROUTERS: tuple[APIRouter, ...] = (access.router, partners.router)
