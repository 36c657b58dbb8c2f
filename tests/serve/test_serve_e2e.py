"""End to end: the real ``rag serve`` (real bundled models) in a subprocess on loopback.

One server for the module (model loading is the slow part): API key set, max queue 2,
max batch 4, max_new_tokens 8. The worker SIGKILL test runs last.
"""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from serve_helpers import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

KEY = "test-key-123"
H = {"X-API-Key": KEY}
PASSAGES = {
    "eiffel.txt": "The Eiffel Tower is in Paris. It was completed in 1889 and is 330 metres tall.",
    "superbowl.txt": "Super Bowl 50 was won by the Denver Broncos, who beat the Carolina Panthers 24-10.",
    "amazon.txt": "The Amazon river flows through Brazil, Peru and Colombia into the Atlantic Ocean.",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rag.config import Settings
    from rag.ingest import ingest

    root = tmp_path_factory.mktemp("serve")
    docs = root / "docs"
    docs.mkdir()
    for name, text in PASSAGES.items():
        (docs / name).write_text(text + "\n")
    ingest([docs], root / "index", Settings.build(), progress=False)
    srv = ServerProcess(
        root / "index", root / "server.log",
        "--api-key", KEY, "--max-queue", "2", "--max-batch-size", "4", "--max-wait-ms", "20",
        "--max-new-tokens", "8", "--timeout", "60", "--no-cache", "--heartbeat-timeout", "20", "--worker-threads", "1",
    )
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def ask(server, body, **kw):
    return httpx.post(f"{server.url}/v1/ask", json=body, headers=H, timeout=kw.pop("timeout", 120), **kw)


def test_health_ready_and_openapi(server):
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{server.url}/readyz")  # no key needed
    assert r.status_code == 200 and r.json()["worker_pid"] > 0
    spec = httpx.get(f"{server.url}/openapi.json", headers=H).json()
    assert {"/v1/ask", "/v1/ask/stream", "/metrics", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "AskRequest" in spec["components"]["schemas"]


def test_api_key_required(server):
    for method, path in (("POST", "/v1/ask"), ("GET", "/metrics"), ("GET", "/openapi.json")):
        r = httpx.request(method, f"{server.url}{path}", json={"question": "q"})
        assert r.status_code == 401 and r.json()["code"] == "unauthorized", path
    r = httpx.post(f"{server.url}/v1/ask", json={"question": "q"}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 401


def test_ask_rag_and_plain(server):
    r = ask(server, {"question": "Who won Super Bowl 50?", "k": 2})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["mode"] == "rag" and d["finish_reason"] in {"stop", "length", "loop", "stall"}
    assert d["citations"] and d["citations"][0]["source"].endswith("superbowl.txt")
    assert d["tokens"]["generated"] <= 8 and d["timings"]["total_s"] > 0
    r = ask(server, {"question": "What is the capital of France?", "mode": "plain", "max_new_tokens": 4})
    assert r.status_code == 200 and r.json()["citations"] == [] and r.json()["tokens"]["generated"] <= 4


def test_stream_sse(server):
    events = []
    with httpx.stream("POST", f"{server.url}/v1/ask/stream", json={"question": "How tall is the Eiffel Tower?"},
                      headers=H, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                events.append((event, json.loads(line[6:])))
    assert events and events[-1][0] == "answer", events
    tokens = [d["text"] for e, d in events if e == "token"]
    assert tokens and "".join(tokens).strip().startswith(events[-1][1]["answer"].strip()[:3])
    assert events[-1][1]["citations"]


@pytest.mark.parametrize("body, field", [
    ({}, "question"),
    ({"question": "   "}, "question"),
    ({"question": "q", "k": 0}, "k"),
    ({"question": "q", "mode": "oracle"}, "mode"),
    ({"question": "q", "temperature": 5}, "temperature"),
    ({"question": "q", "top_p": 0}, "top_p"),
    ({"question": "q", "max_new_tokens": 10**6}, "max_new_tokens"),
    ({"question": "q", "timeout_s": -1}, "timeout_s"),
    ({"question": "q", "colour": "red"}, "colour"),
])
def test_validation_422(server, body, field):
    r = ask(server, body)
    assert r.status_code == 422, r.text
    d = r.json()
    assert d["code"] == "invalid_input" and not d["retriable"]
    assert any(e["field"] == field and e["reason"] for e in d["errors"]), d


def test_bad_json_and_unknown_path(server):
    r = httpx.post(f"{server.url}/v1/ask", content=b"{not json", headers={**H, "content-type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_input"
    r = httpx.get(f"{server.url}/nope", headers=H)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_oversize_body_413(server):
    big = {"question": "x" * (70 * 1024)}
    r = ask(server, big)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks():  # no content-length: the streamed body is counted
        for _ in range(80):
            yield b"x" * 1024

    r = httpx.post(f"{server.url}/v1/ask", content=chunks(), headers={**H, "content-type": "application/json"})
    assert r.status_code == 413


def test_flood_gets_429_at_once(server):
    body = {"question": "Where is the Eiffel Tower?", "mode": "plain", "max_new_tokens": 1}
    with ThreadPoolExecutor(10) as pool:
        t = time.monotonic()
        results = list(pool.map(lambda _: (ask(server, body), time.monotonic() - t), range(10)))
    codes = [r.status_code for r, _ in results]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(429) >= 1 and codes.count(200) >= 3, codes
    for r, elapsed in results:
        if r.status_code == 429:
            assert elapsed < 5.0  # refused at once, not after waiting
            assert r.json()["code"] == "overloaded" and r.json()["retriable"] and int(r.headers["Retry-After"]) >= 1


def test_deadline(server):
    t = time.monotonic()
    r = ask(server, {"question": "Describe the Amazon river in detail.", "max_new_tokens": 200, "timeout_s": 0.3})
    elapsed = time.monotonic() - t
    assert elapsed < 0.3 + 1.0 + 1.5, elapsed  # deadline + grace + slack
    if r.status_code == 200:
        assert r.json()["finish_reason"] == "timeout"
    else:
        assert r.status_code == 504 and r.json()["code"] == "timeout" and r.json()["retriable"]


def test_metrics(server):
    r = httpx.get(f"{server.url}/metrics", headers=H)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for series in ("rag_batch_size_count", "rag_queue_wait_seconds_count", "rag_requests_total",
                   'rag_errors_total{code="overloaded"}', 'rag_errors_total{code="unauthorized"}'):
        assert series in text, series
    count = [l for l in text.splitlines() if l.startswith("rag_batch_size_count")][0]
    assert float(count.split()[-1]) >= 3


def test_sigkill_worker_mid_load_recovers(server):
    pid = httpx.get(f"{server.url}/readyz").json()["worker_pid"]
    body = {"question": "Who did the Denver Broncos beat?", "max_new_tokens": 16, "timeout_s": 60}
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(ask, server, body, timeout=90) for _ in range(3)]  # 1 running + 2 queued
        t = time.monotonic()
        while httpx.get(f"{server.url}/readyz").json().get("running", 0) == 0:  # kill while one is running
            assert time.monotonic() - t < 30
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        results = [f.result() for f in futures]  # no hang: httpx would raise after 90 s
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 429, 503, 504}, [(r.status_code, r.text) for r in results]
    assert 503 in codes, codes
    for r in results:
        if r.status_code == 503:
            d = r.json()
            assert d["code"] == "unavailable" and d["retriable"] is True and "Retry-After" in r.headers
    assert httpx.get(f"{server.url}/healthz").status_code == 200  # the server stayed up
    ready = server.wait_ready(240)
    assert ready["worker_pid"] != pid and ready["restarts"] == 1
    r = ask(server, {"question": "Who won Super Bowl 50?"})
    assert r.status_code == 200, r.text
