"""The gateway's /metrics (admins and the metrics:read scope only): its own process, its read-model
consumers and its HTTP requests, from prometheus_client; nothing asked of other services."""

from __future__ import annotations

from gateway.auth import Role
from runtime.metrics import metric_names
from tests.support.gateway import Gateway


async def test_the_gateway_exports_its_requests_consumers_and_process(gateway: Gateway) -> None:
    admin = gateway.people[Role.admin]
    assert (await admin.client.get("/api/me")).status_code == 200
    response = await admin.client.get("/metrics")
    assert response.status_code == 200, response.text
    text = response.text
    assert {"process_cpu_seconds_total", "python_info", "partnerops_http_requests_total",
            "partnerops_http_request_duration_seconds_bucket"} <= set(metric_names(text))
    assert "# TYPE partnerops_http_requests_total counter" in text
    assert 'partnerops_http_requests_total{method="GET",route="/api/me",status="200"}' in text, text
    assert 'partnerops_consumer_pending{consumer="gateway__PIPELINE",service="gateway"}' in text, text


async def test_metrics_are_for_admins_only(gateway: Gateway) -> None:
    assert (await gateway.people[Role.viewer].client.get("/metrics")).status_code == 403
    async with gateway.client() as anonymous:
        assert (await anonymous.get("/metrics")).status_code in (401, 303)
