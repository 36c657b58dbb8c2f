"""Prometheus series of rag, defined once on a private registry.

All series live on :data:`REGISTRY` (not prometheus_client's global default one, so
importing this module twice, or in a process that has its own metrics, never
registers a name twice). The registry also carries the standard ``process_*``
collector, ``rag_process_resident_memory_bytes`` (psutil, read at scrape time) and,
when torch is already imported and CUDA is available, ``rag_gpu_memory_allocated_bytes``
per device (torch is never imported by this module: it costs seconds).

Latency buckets span 5 ms (a GPU step, a cache hit) to 120 s (a CPU answer of a
large model); token buckets are powers of two up to 32k.

Example:
    >>> from rag.schema import Answer, Timings
    >>> observe_answer(Answer(question="q", text="a", mode="rag", finish_reason="stop",
    ...                       timings=Timings(total_s=0.4)), model="m", mode="rag")
    >>> b"rag_requests_total" in render()
    True
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from rag.schema import Answer

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

LATENCY_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)
QUEUE_BUCKETS: tuple[float, ...] = (0.001, 0.0025, *LATENCY_BUCKETS)
TOKEN_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(0, 16))  # 1 .. 32768
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)

STAGES = ("retrieve", "prompt", "generate")

REQUEST_LATENCY = Histogram(
    "rag_request_latency_seconds", "End-to-end time of one answer (cached answers included).",
    ["model", "mode"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
TTFT = Histogram(
    "rag_time_to_first_token_seconds", "Time from request to the first generated token.",
    ["model", "mode"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
STAGE_LATENCY = Histogram(
    "rag_stage_latency_seconds", "Time per pipeline stage (retrieve, prompt, generate).",
    ["stage"], buckets=LATENCY_BUCKETS, registry=REGISTRY,
)
PROMPT_TOKENS = Histogram(
    "rag_prompt_tokens", "Prompt length in tokens.", buckets=TOKEN_BUCKETS, registry=REGISTRY,
)
GENERATED_TOKENS = Histogram(
    "rag_generated_tokens", "Generated tokens per answer.", buckets=TOKEN_BUCKETS, registry=REGISTRY,
)
REQUESTS = Counter(
    "rag_requests_total", "Answers produced, by mode and finish reason.",
    ["mode", "finish_reason"], registry=REGISTRY,
)
ERRORS = Counter(
    "rag_errors_total", "Requests that failed, by rag error code.", ["code"], registry=REGISTRY,
)
CACHE_REQUESTS = Counter(
    "rag_cache_requests_total", "Cache lookups per tier and result (hit|miss).",
    ["tier", "result"], registry=REGISTRY,
)
CACHE_ERRORS = Counter(
    "rag_cache_errors_total", "Cache failures per tier (logged and treated as a miss).",
    ["tier"], registry=REGISTRY,
)
RESIDENT_MEMORY = Gauge(
    "rag_process_resident_memory_bytes", "Resident memory of this process (psutil, read at scrape time).",
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "rag_batch_size", "Requests per generation batch (serve).", buckets=BATCH_BUCKETS, registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "rag_queue_wait_seconds", "Time a request waited in the serve queue before its batch started.",
    buckets=QUEUE_BUCKETS, registry=REGISTRY,
)


def _rss() -> float:
    try:
        import psutil  # noqa: PLC0415

        return float(psutil.Process().memory_info().rss)
    except Exception:  # noqa: BLE001 - a scrape must never fail because of this gauge
        return float("nan")


RESIDENT_MEMORY.set_function(_rss)


class _GpuMemoryCollector(Collector):
    """``rag_gpu_memory_allocated_bytes{device}``: only when torch is loaded and CUDA is available."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        torch = sys.modules.get("torch")
        if torch is None:
            return
        try:
            if not torch.cuda.is_available():
                return
            fam = GaugeMetricFamily(
                "rag_gpu_memory_allocated_bytes", "Memory allocated by torch on each CUDA device.", labels=["device"]
            )
            for i in range(torch.cuda.device_count()):
                fam.add_metric([str(i)], float(torch.cuda.memory_allocated(i)))
            yield fam
        except Exception as e:  # noqa: BLE001
            log.debug("gpu memory collector failed: %s", e)

    def describe(self) -> list[Any]:
        return []  # dynamic: present only when CUDA is


REGISTRY.register(_GpuMemoryCollector())
try:
    ProcessCollector(registry=REGISTRY)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
except Exception as e:  # noqa: BLE001 - not on every platform
    log.debug("process collector unavailable: %s", e)


def observe_answer(answer: "Answer", model: str, mode: str) -> None:
    """Record one finished answer.

    Cached answers (``answer.cached`` set) count as requests and in the request latency,
    but not in the stage, time-to-first-token and token histograms (nothing was generated).
    """
    try:
        t = answer.timings
        REQUEST_LATENCY.labels(model=model, mode=mode).observe(max(0.0, float(t.total_s)))
        REQUESTS.labels(mode=mode, finish_reason=answer.finish_reason).inc()
        if answer.cached:
            return
        if t.ttft_s is not None:
            TTFT.labels(model=model, mode=mode).observe(max(0.0, float(t.ttft_s)))
        for stage, value in (("retrieve", t.retrieve_s), ("prompt", t.prompt_s), ("generate", t.generate_s),
                             ("select", t.select_s)):
            if value:
                STAGE_LATENCY.labels(stage=stage).observe(max(0.0, float(value)))
        PROMPT_TOKENS.observe(max(0, int(answer.tokens.prompt)))
        GENERATED_TOKENS.observe(max(0, int(answer.tokens.generated)))
    except Exception as e:  # noqa: BLE001 - metrics must never break an answer
        log.warning("observe_answer failed: %s", e)


def observe_error(code: str) -> None:
    """Count one failed request by its :class:`rag.errors.RagError` code."""
    ERRORS.labels(code=code).inc()


def observe_cache(tier: str, hit: bool) -> None:
    """Count one cache lookup in ``tier`` ("memory", "disk", "redis")."""
    CACHE_REQUESTS.labels(tier=tier, result="hit" if hit else "miss").inc()


def observe_cache_error(tier: str) -> None:
    """Count one cache failure in ``tier`` (the cache logs it and treats it as a miss)."""
    CACHE_ERRORS.labels(tier=tier).inc()


def observe_stage(stage: str, seconds: float) -> None:
    """Record the time of one stage outside :func:`observe_answer` (e.g. batched retrieval)."""
    STAGE_LATENCY.labels(stage=stage).observe(max(0.0, float(seconds)))


def observe_batch(batch_size: int, queue_wait_s: list[float] | tuple[float, ...] = ()) -> None:
    """Record one serve batch: its size and how long each of its requests waited."""
    BATCH_SIZE.observe(batch_size)
    for w in queue_wait_s:
        QUEUE_WAIT.observe(max(0.0, float(w)))


def render() -> bytes:
    """All series in the Prometheus text exposition format."""
    return generate_latest(REGISTRY)


def write_metrics(path: str | os.PathLike[str]) -> Path:
    """Write :func:`render` to ``path`` atomically (temp file in the same folder, then rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = render()
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def start_exporter(port: int, host: str = "127.0.0.1") -> "WSGIServer":
    """Serve ``/metrics`` of :data:`REGISTRY` on ``host:port`` in a daemon thread.

    ``port=0`` picks a free port (``server.server_address[1]``). Stop it with
    ``server.shutdown(); server.server_close()``.
    """
    from prometheus_client import start_http_server  # noqa: PLC0415

    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server


__all__ = [
    "REGISTRY", "LATENCY_BUCKETS", "TOKEN_BUCKETS", "observe_answer", "observe_error", "observe_cache",
    "observe_cache_error", "observe_stage", "observe_batch", "render", "write_metrics", "start_exporter",
]
