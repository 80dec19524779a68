"""The FastAPI application: starts the gateway's share of the backbone (read-model consumers,
command client) in its lifespan and serves the API and the pages."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from contracts import pipeline as pc
from gateway import (
    asyncapi,
    directory_sync,
    errors,
    health,
    housekeeping,
    metrics,
    openapi,
    passwords,
    read_models,
    routes,
    web,
)
from gateway.auth import AuthRequired, Principal, Role, require
from gateway.security_headers import GatewayApp
from runtime.errors import CommandFailed
from runtime.service import RunningService, ServiceDefinition, shutdown, start
from runtime.settings import Settings, get_settings
from runtime.telemetry import TraceContext, spans_recorded

# Besides the read models: the hourly housekeeping tick, and the directory sent to notifications.
definition = ServiceDefinition(name="gateway", publishes=(pc.STREAM,),
                               subscriptions=(*read_models.SUBSCRIPTIONS, *housekeeping.SUBSCRIPTIONS),
                               workers=(directory_sync.directory_pusher,))


def create_app(settings: Settings | None = None, *, exit_on_fatal: bool = False) -> FastAPI:
    """`exit_on_fatal`: when the gateway's NATS connection closes for good or a consumer task dies, stop
    the server (SIGTERM to itself); `python -m gateway serve` then exits non-zero (app.state.fatal)."""
    settings = settings or get_settings()
    passwords.configure(settings.gateway_password_hash_concurrency, environment=settings.environment)

    def on_fatal(_reason: str) -> None:
        if exit_on_fatal:
            os.kill(os.getpid(), signal.SIGTERM)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        running: RunningService = await start(definition, settings, stop, on_fatal=on_fatal)
        app.state.running = running
        app.state.settings = settings
        try:
            yield
        finally:
            stop.set()
            await shutdown(running)
            app.state.fatal = running.fatal

    app = GatewayApp(
        title="PartnerOps API",
        version="0.1.0",
        description="The partnerships department's pipeline, commissions, relationships and alerts.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Refused with 413 before the body is read (from Content-Length, or as a chunked body passes
        # it); the CSV import routes raise it for themselves.
        max_body_size=settings.gateway_max_body_bytes,
        # A request's span is OpenTelemetry's instrumentation's when spans are recorded, TraceContext's
        # when not (below). FastAPI's own telemetry (0.165+) stands aside for the former but, with a
        # tracer provider set and no instrumentation, would make a second span per request, with its
        # attributes and metrics: ~10 % of a kept KPI read's CPU (docs/benchmarks.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(CommandFailed, errors.command_failed_handler)
    app.add_exception_handler(RequestValidationError, web.validation_error_page)
    app.add_exception_handler(ValidationError, errors.model_validation_handler)
    for infrastructure_error in errors.INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(infrastructure_error, errors.infrastructure_handler)
    # Starlette's own (an unknown path's 404, a 405) as well as FastAPI's: both are pages for a browser.
    app.add_exception_handler(StarletteHTTPException, web.http_error_page)
    app.add_exception_handler(Exception, web.server_error_page)

    @app.exception_handler(AuthRequired)
    async def auth_required(request: Request, exc: AuthRequired) -> Response:
        # A person in a browser goes to the sign-in page; programs get a 401 they can act on.
        if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
            return JSONResponse({"detail": exc.detail}, status_code=401, headers=exc.headers)
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    for router in routes.ROUTERS:
        app.include_router(router)
    app.include_router(web.router)
    web.docs.install(app)  # before /static: it mounts /static/apidocs
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    app.include_router(health.router)
    app.state.metrics = metrics.GatewayMetrics(app.state)
    app.add_middleware(metrics.RequestMetrics, metrics=app.state.metrics)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus_metrics(
        request: Request, _: Annotated[Principal, Depends(require(Role.admin, scope="metrics:read"))]
    ) -> Response:
        """This process's metrics only (each service answers its own scrape on METRICS_PORT)."""
        return Response(await request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/asyncapi.json", tags=["docs"])
    async def asyncapi_doc() -> JSONResponse:
        return JSONResponse(asyncapi.document())

    openapi.declare_responses(app)
    if spans_recorded():
        FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,static")
    else:
        app.add_middleware(TraceContext)
    return app
