"""Security headers on every response the gateway sends (docs/gateway-hardening.md).

A pure ASGI middleware rather than `BaseHTTPMiddleware`, so streamed responses (CSV exports) pass
through untouched and the headers are added to error pages, redirects and static files alike. It
wraps the whole application (`GatewayApp`), not only the routes: FastAPI's body limit answers 413
and its ServerErrorMiddleware answers 500 outside every middleware `add_middleware` installs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# No inline script anywhere (the pages' scripts are files under /static), so script-src is 'self'
# alone. Inline *style* attributes stay allowed: the board sets a CSS variable per page and Swagger UI
# styles its own elements; a style cannot run code. Redoc builds its search worker from a blob.
CSP = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

ALWAYS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
)
# Static assets may be cached; everything else is per person (pages, API answers, new tokens) or
# changes with every request, so it is never stored by the browser or a proxy unless a route says so.
CACHEABLE_PREFIXES = ("/static/",)


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(CACHEABLE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in ALWAYS:
                    headers.setdefault(name, value)
                if not cacheable:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class GatewayApp(FastAPI):
    """FastAPI with `SecurityHeaders` outside its whole middleware stack, so no response the
    application sends (a 413 for a body past the limit, a 500) goes out without the headers."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())
