"""/healthz (readiness: is the platform able to serve?) and /livez (liveness: is this process's event
loop answering?).

/healthz answers within `runtime.health.DEADLINE` whatever is down: the gateway's own check and every
service's health request run at once over the gateway's existing NATS connection (no new connection
per probe), each bounded. A part that does not answer is reported "down" with the reason, and the
answer is 503 with every reason listed. Each service's reply is passed on as the service gives it
(database, NATS, consumers with their lag and task liveness), so what a service reports is visible
here without the gateway knowing its keys.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gateway.state import running
from runtime import health
from runtime.topology import SERVICES

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = Field(description="ok, or degraded (then the answer is 503)")
    reasons: list[str] = Field(description="why it is not ok; empty when ok")
    gateway: dict[str, Any] = Field(description="the gateway's own check")
    services: dict[str, dict[str, Any]] = Field(description="each service's health reply, as it gives it")


class Alive(BaseModel):
    status: str


def problems(name: str, report: dict[str, Any]) -> list[str]:
    """Why a report is not ok, in words; [] when it is ok."""
    found: list[str] = []
    if report.get("database") is False:
        found.append(f"{name}: the database does not answer")
    if report.get("nats") is False:
        found.append(f"{name}: NATS is not connected")
    consumers = report.get("consumers")
    if isinstance(consumers, dict):
        for durable, stats in consumers.items():
            if not isinstance(stats, dict):
                continue
            if stats.get("alive") is False or stats.get("running") is False:
                found.append(f"{name}: consumer {durable} is not running")
            if stats.get("waiting_long"):
                found.append(f"{name}: consumer {durable} has been waiting long (the database or the bus is down?)")
    for key in ("reason", "error", "fatal"):
        if isinstance(report.get(key), str):
            found.append(f"{name}: {report[key]}")
    if isinstance(report.get("reasons"), list):
        found += [f"{name}: {r}" for r in report["reasons"] if isinstance(r, str)]
    if report.get("status") != "ok" and not found:
        found.append(f"{name}: {report.get('status', 'no status')}")
    return found if report.get("status") != "ok" or found else []


async def readiness(request: Request) -> tuple[bool, Health]:
    service = running(request)

    async def own() -> dict[str, Any]:
        try:
            return await health.bounded(service.health(), health.SERVICE_TIMEOUT, "gateway")
        except Exception as exc:
            return {"service": "gateway", "status": "down", "reason": health.reason_of(exc)}

    try:
        gateway, services = await health.bounded(
            asyncio.gather(own(), health.ask_all(service.nc, SERVICES)), health.DEADLINE - 0.2, "health")
    except Exception as exc:  # belt and braces: each part is bounded already
        gateway, services = {"service": "gateway", "status": "down", "reason": health.reason_of(exc)}, {}
    reasons = problems("gateway", gateway)
    for name, report in services.items():
        reasons += problems(name, report)
    ok = not reasons
    return ok, Health(status="ok" if ok else "degraded", reasons=reasons, gateway=gateway, services=services)


@router.get("/healthz", response_model=Health, responses={503: {"model": Health, "description": "not ready"}})
async def healthz(request: Request) -> JSONResponse:
    ok, report = await readiness(request)
    return JSONResponse(report.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/livez", response_model=Alive)
async def livez() -> Alive:
    """Answers while the process's event loop runs; says nothing about NATS, Postgres or the services
    (restarting a gateway does not fix them: probe /healthz for readiness)."""
    return Alive(status="alive")
