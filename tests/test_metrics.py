"""rag.metrics: series names, observe_* helpers, the HTTP exporter and the text file."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rag import metrics
from rag.schema import Answer, Timings, TokenCounts

EXPECTED = {
    "rag_request_latency_seconds", "rag_time_to_first_token_seconds", "rag_stage_latency_seconds",
    "rag_prompt_tokens", "rag_generated_tokens", "rag_requests", "rag_errors", "rag_cache_requests",
    "rag_cache_errors", "rag_process_resident_memory_bytes", "rag_batch_size", "rag_queue_wait_seconds",
}


def answer(finish="stop", cached=None, total=0.8, ttft=0.05, prompt=120, generated=12) -> Answer:
    return Answer(
        question="Who won?", text="Denver", mode="rag", finish_reason=finish,
        tokens=TokenCounts(prompt=prompt, generated=generated),
        timings=Timings(retrieve_s=0.01, prompt_s=0.002, ttft_s=ttft, generate_s=total - 0.012, total_s=total),
        cached=cached,
    )


def families(text: str) -> dict[str, dict]:
    out = {}
    for fam in text_string_to_metric_families(text):
        out[fam.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in fam.samples}
    return out


def value(fams, family, sample, **labels):
    return fams[family].get((sample, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def exporter():
    server = metrics.start_exporter(0)
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def scrape(url: str) -> dict[str, dict]:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
        return families(r.read().decode())


def test_exporter_serves_observed_answers(exporter):
    model = "test-model-exporter"
    before = scrape(exporter)
    metrics.observe_answer(answer(), model, "rag")
    metrics.observe_answer(answer(finish="length", total=30.0, ttft=2.0, generated=48), model, "rag")
    metrics.observe_answer(answer(cached="redis", total=0.002), model, "rag")
    metrics.observe_error("timeout")
    metrics.observe_error("timeout")
    metrics.observe_cache("redis", True)
    metrics.observe_cache("disk", False)
    metrics.observe_batch(4, [0.01, 0.02, 0.03, 0.04])
    after = scrape(exporter)

    assert EXPECTED <= set(after), EXPECTED - set(after)
    lab = {"model": model, "mode": "rag"}
    assert value(after, "rag_request_latency_seconds", "rag_request_latency_seconds_count", **lab) == 3
    assert value(after, "rag_request_latency_seconds", "rag_request_latency_seconds_bucket", le="0.005", **lab) == 1
    assert value(after, "rag_request_latency_seconds", "rag_request_latency_seconds_bucket", le="1.0", **lab) == 2
    assert value(after, "rag_time_to_first_token_seconds", "rag_time_to_first_token_seconds_count", **lab) == 2

    def delta(family, sample, **labels):
        return value(after, family, sample, **labels) - value(before, family, sample, **labels)

    assert delta("rag_requests", "rag_requests_total", mode="rag", finish_reason="stop") == 2
    assert delta("rag_requests", "rag_requests_total", mode="rag", finish_reason="length") == 1
    assert delta("rag_errors", "rag_errors_total", code="timeout") == 2
    assert delta("rag_cache_requests", "rag_cache_requests_total", tier="redis", result="hit") == 1
    assert delta("rag_cache_requests", "rag_cache_requests_total", tier="disk", result="miss") == 1
    # the cached answer generated nothing: two observations, not three
    assert delta("rag_generated_tokens", "rag_generated_tokens_count") == 2
    assert delta("rag_generated_tokens", "rag_generated_tokens_sum") == 60
    assert delta("rag_stage_latency_seconds", "rag_stage_latency_seconds_count", stage="retrieve") == 2
    assert delta("rag_batch_size", "rag_batch_size_count") == 1
    assert delta("rag_queue_wait_seconds", "rag_queue_wait_seconds_count") == 4
    assert value(after, "rag_process_resident_memory_bytes", "rag_process_resident_memory_bytes") > 1e6
    assert "process_cpu_seconds" in after  # the standard process collector is on our registry
    assert "rag_gpu_memory_allocated_bytes" not in after  # no CUDA here (present only when available)


def test_buckets_span_gpu_and_cpu_latencies():
    assert metrics.LATENCY_BUCKETS[0] <= 0.005 and metrics.LATENCY_BUCKETS[-1] >= 120
    assert list(metrics.LATENCY_BUCKETS) == sorted(metrics.LATENCY_BUCKETS)


def test_render_and_atomic_write(tmp_path):
    metrics.observe_answer(answer(), "test-model-file", "plain")
    path = metrics.write_metrics(tmp_path / "sub" / "rag.prom")
    text = path.read_text()
    assert text.encode() == metrics.render() or "rag_requests_total" in text
    fams = families(text)
    assert value(fams, "rag_request_latency_seconds", "rag_request_latency_seconds_count",
                 model="test-model-file", mode="plain") == 1
    assert [p.name for p in path.parent.iterdir()] == ["rag.prom"]  # no temp file left


def test_series_live_on_a_private_registry():
    import prometheus_client

    assert metrics.REGISTRY is not prometheus_client.REGISTRY
    assert b"rag_" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)


def test_observe_answer_never_raises():
    bad = answer()
    bad.timings = None  # type: ignore[assignment]
    metrics.observe_answer(bad, "m", "rag")
