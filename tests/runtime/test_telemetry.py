"""The light request span the gateway uses when spans are not recorded (runtime.telemetry.TraceContext):
a request still runs in the caller's trace, so its trace id reaches the logs and the messages it sends."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from runtime import telemetry

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def app() -> telemetry.TraceContext:
    async def trace_id(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(telemetry.current_trace_id() or "none")

    return telemetry.TraceContext(Starlette(routes=[Route("/", trace_id)]))


async def test_a_request_continues_the_callers_trace() -> None:
    telemetry.setup_tracing("test")
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        continued = await client.get("/", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
        assert continued.text == TRACE_ID
        # Without one, a trace of its own (the id the request's logs and messages carry).
        first, second = (await client.get("/")).text, (await client.get("/")).text
        assert len(first) == 32 and first != "none" and first != second
