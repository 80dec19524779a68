"""The gateway's Prometheus metrics (prometheus_client; runtime/metrics.py has what every process
exports: process metrics, its consumers' counters and lag): HTTP requests by method, route template
and status, and how long they took."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.metrics import ProcessMetrics


class GatewayMetrics(ProcessMetrics):
    """The gateway process's registry; its consumers are known once the lifespan has started them."""

    def __init__(self, state: Any) -> None:
        def running() -> Any:
            return getattr(state, "running", None)

        super().__init__("gateway", consumers=lambda: running().consumers if running() else (),
                         nc=lambda: running().nc if running() else None)
        self.requests = Counter("partnerops_http_requests", "HTTP requests answered, by method, route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.seconds = Histogram("partnerops_http_request_duration_seconds", "Time to answer, by method and route.",
                                 ["method", "route"], registry=self.registry)


class RequestMetrics:
    """Counts requests and their time by route template and status. A pure ASGI middleware: Starlette's
    `BaseHTTPMiddleware` (what `app.middleware("http")` installs) runs the rest of the request in a
    task of its own behind memory streams, which cost a noticeable share of a cheap request's CPU
    (bench.kpi_read)."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets if the application raises before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = _route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.seconds.labels(scope["method"], route).observe(time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    # Label by template, not by raw path, so ids do not explode the series count.
    matched = scope.get("route")
    if matched is not None and getattr(matched, "path", None):
        return str(matched.path)
    app = scope.get("app")
    for route in (app.router.routes if app is not None else ()):
        match, _ = route.matches(scope)
        if match == Match.FULL and getattr(route, "path", None):
            return str(route.path)
    return "unmatched"
