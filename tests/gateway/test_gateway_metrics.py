"""The gateway's /metrics (admins and the metrics:read scope only): its own process, its read-model
consumers and its HTTP requests, from prometheus_client; nothing asked of other services."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import Role
from runtime.metrics import ProcessMetrics, metric_names
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


async def test_the_exposition_parses_with_counters_histograms_and_escaped_labels(gateway: Gateway) -> None:
    """prometheus_client's own parser reads the scrape: counters are counters (samples named _total),
    the request histogram has _count, _sum and buckets, and a second scrape at once asks the bus
    nothing (the consumers' lag is kept a few seconds)."""
    admin = gateway.people[Role.admin]
    assert (await admin.client.get("/api/me")).status_code == 200
    text = (await admin.client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["partnerops_http_requests"]
    assert requests.type == "counter" and {s.name for s in requests.samples} >= {"partnerops_http_requests_total"}
    applied = families["partnerops_consumer_applied"]
    assert applied.type == "counter" and all(s.name == "partnerops_consumer_applied_total" for s in applied.samples)
    duration = families["partnerops_http_request_duration_seconds"]
    names = {s.name for s in duration.samples if s.labels.get("route") == "/api/me"}
    assert duration.type == "histogram" and {"partnerops_http_request_duration_seconds_count",
                                             "partnerops_http_request_duration_seconds_sum",
                                             "partnerops_http_request_duration_seconds_bucket"} <= names
    assert families["process_cpu_seconds"].type == "counter"

    consumers = gateway.app.state.metrics.consumers
    asked = consumers.lag_asked
    assert (await admin.client.get("/metrics")).status_code == 200
    assert consumers.lag_asked == asked, "a scrape right after another asked JetStream for the lag again"


async def test_label_values_are_escaped() -> None:
    """A consumer name with a quote, a backslash and a line break comes back whole through the parser."""
    hostile = 'odd"name\\with\nbreak'
    consumer = SimpleNamespace(durable=hostile, stream="S", alive=lambda: True,
                               stats=SimpleNamespace(applied=3, duplicates=0, redelivered=0, retried=0,
                                                     dead_lettered=0))
    text = (await ProcessMetrics("svc", consumers=lambda: [consumer]).exposition()).decode()
    applied = next(f for f in text_string_to_metric_families(text) if f.name == "partnerops_consumer_applied")
    assert [(s.labels["consumer"], s.value) for s in applied.samples] == [(hostile, 3.0)]
