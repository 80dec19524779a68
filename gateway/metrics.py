"""Prometheus text metrics: HTTP requests at the gateway, and every consumer's lag, redeliveries
and dead letters as each service reports them in its health reply."""

from __future__ import annotations

import time
from collections import Counter

from nats.aio.client import Client as NATS
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime import health
from runtime.settings import SERVICES

_requests: Counter[tuple[str, str, str]] = Counter()
_seconds: Counter[tuple[str, str]] = Counter()


class RequestMetrics:
    """Counts requests and their time by route template and status. A pure ASGI middleware: Starlette's
    `BaseHTTPMiddleware` (what `app.middleware("http")` installs) runs the rest of the request in a
    task of its own behind memory streams, which cost a noticeable share of a cheap request's CPU
    (bench.kpi_read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            _requests[(scope["method"], route, str(status))] += 1
            _seconds[(scope["method"], route)] += time.perf_counter() - start


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


def _line(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}"


async def render(nc: NATS, own: dict[str, object]) -> str:
    lines = [
        "# HELP partnerops_http_requests_total HTTP requests by method, route and status.",
        "# TYPE partnerops_http_requests_total counter",
        *(_line("partnerops_http_requests_total", {"method": m, "route": r, "status": s}, n)
          for (m, r, s), n in sorted(_requests.items())),
        "# HELP partnerops_http_request_seconds_sum Time spent answering, by method and route.",
        "# TYPE partnerops_http_request_seconds_sum counter",
        *(_line("partnerops_http_request_seconds_sum", {"method": m, "route": r}, round(v, 6))
          for (m, r), v in sorted(_seconds.items())),
    ]
    reports: dict[str, dict[str, object]] = {"gateway": own, **await health.ask_all(nc, SERVICES)}
    gauges = {
        "pending": ("partnerops_consumer_pending", "Messages not yet delivered to the consumer (lag)."),
        "ack_pending": ("partnerops_consumer_ack_pending", "Delivered messages not yet acknowledged."),
        "applied": ("partnerops_consumer_applied_total", "Events applied since the process started."),
        "duplicates": ("partnerops_consumer_duplicates_total", "Duplicates skipped by the inbox."),
        "redelivered": ("partnerops_consumer_redelivered_total", "Redeliveries seen."),
        "dead_lettered": ("partnerops_consumer_dead_lettered_total", "Messages parked on the dead letters."),
    }
    lines += ["# HELP partnerops_service_up 1 when the service answers its health check healthy.",
              "# TYPE partnerops_service_up gauge"]
    lines += [_line("partnerops_service_up", {"service": s}, 1 if r.get("status") == "ok" else 0)
              for s, r in reports.items()]
    for key, (metric, help_text) in gauges.items():
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for service, report in reports.items():
            consumers = report.get("consumers") or {}
            assert isinstance(consumers, dict)
            for durable, stats in consumers.items():
                value = stats.get(key) if isinstance(stats, dict) else None
                if isinstance(value, int | float):
                    lines.append(_line(metric, {"service": service, "consumer": durable}, value))
    return "\n".join(lines) + "\n"
