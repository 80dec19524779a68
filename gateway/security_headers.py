"""Security headers on every response the gateway sends (docs/gateway-hardening.md).

A pure ASGI middleware rather than `BaseHTTPMiddleware`, so streamed responses (CSV exports) pass
through untouched and the headers are added to error pages, redirects and static files alike. It
wraps the whole application (`GatewayApp`), not only the routes: FastAPI's body limit answers 413
and its ServerErrorMiddleware answers 500 outside every middleware `add_middleware` installs."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.middleware.errors import ServerErrorMiddleware
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
    """FastAPI whose every response carries the headers. `SecurityHeaders` goes just inside the
    outermost ServerErrorMiddleware, so it covers FastAPI's body limit (its 413s) and everything
    after it; OpenTelemetry's instrumentation, which expects ServerErrorMiddleware outermost, still
    applies. The 500 that ServerErrorMiddleware itself answers comes from `server_error`, with the
    headers set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_exception_handler(Exception, server_error)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if not isinstance(stack, ServerErrorMiddleware):
            raise TypeError(f"FastAPI's middleware stack starts with {type(stack).__name__}; "
                            "put SecurityHeaders where it covers every response")
        stack.app = SecurityHeaders(stack.app)
        return stack


async def server_error(request: Request, exc: Exception) -> Response:
    """The answer to an unhandled error (logged by the server), with the headers every response has."""
    return PlainTextResponse("Internal Server Error", status_code=500,
                             headers={**dict(ALWAYS), "cache-control": "no-store"})
