"""A service's Prometheus endpoint (runtime/metrics.py, served on METRICS_PORT by `python -m services.<x>`):
the standard process metrics, every consumer's counters (as counters, with _total) and its lag; the port
shared with the process replacing it in a rolling restart."""

from __future__ import annotations

import httpx

from runtime import metrics
from runtime.embedded import free_port
from runtime.service import RunningService


async def test_a_service_answers_its_own_scrape_with_process_and_consumer_metrics(
        pipeline_service: RunningService) -> None:
    process = metrics.ProcessMetrics("pipeline", consumers=lambda: pipeline_service.consumers,
                                     nc=lambda: pipeline_service.nc)
    port = free_port()
    server = await metrics.serve(process, "127.0.0.1", port)
    # A rolling restart starts the replica's next process while this one drains: both bind the port a moment.
    successor = await metrics.serve(process, "127.0.0.1", port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            scrape = await client.get("/metrics")
            elsewhere = await client.get("/")
    finally:
        for s in (server, successor):
            s.close()
            await s.wait_closed()
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    assert elsewhere.status_code == 404
    text = scrape.text
    names = set(metrics.metric_names(text))
    # The standard process metrics come with the registry.
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
            "python_info"} <= names, sorted(names)
    durable = pipeline_service.consumers[0].durable
    labels = f'{{consumer="{durable}",service="pipeline"}}'  # prometheus_client sorts label names
    assert "# TYPE partnerops_consumer_applied_total counter" in text
    assert f"partnerops_consumer_applied_total{labels}" in text, text
    assert f"partnerops_consumer_dead_lettered_total{labels}" in text
    assert f"partnerops_consumer_pending{labels} 0.0" in text, text
    assert f"partnerops_consumer_alive{labels} 1.0" in text
