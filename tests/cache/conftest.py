"""Fixtures for the cache tests: a real, test-only Redis on 127.0.0.1 (no mocks).

The session Redis runs on ``RAG_TEST_REDIS_PORT`` (default 6390) and is started by
``scripts/redis.sh`` (installing redis-server with apt-get when missing); tests that
kill Redis get their own instance on the next port. When redis-server cannot be
installed, the Redis tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "redis.sh"
PORT = int(os.environ.get("RAG_TEST_REDIS_PORT", "6390"))


def redis_script(port: int, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_REDIS_PORT": str(port)}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


def _start_or_skip(port: int) -> str:
    try:
        r = redis_script(port)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"could not run scripts/redis.sh: {e}")
    if r.returncode != 0:
        pytest.skip(f"redis-server could not be installed/started on 127.0.0.1:{port}: "
                    f"{(r.stderr or r.stdout).strip()[-300:]}")
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url():
    """URL of the session's test Redis; stopped at the end only if this session started it."""
    was_running = redis_script(PORT, "status", timeout=30).returncode == 0
    url = _start_or_skip(PORT)
    yield url
    if not was_running:
        redis_script(PORT, "stop", timeout=60)


@pytest.fixture
def killable_redis(redis_url: str):
    """A second Redis (port PORT+1) that the test may stop and restart; stopped afterwards.

    Yields ``(url, start, stop)``.
    """
    port = PORT + 1
    url = _start_or_skip(port)

    def start() -> None:
        r = redis_script(port)
        assert r.returncode == 0, r.stderr

    def stop() -> None:
        r = redis_script(port, "stop")
        assert r.returncode == 0, r.stderr

    try:
        yield url, start, stop
    finally:
        redis_script(port, "stop")


@pytest.fixture
def raw_redis(redis_url: str):
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def ns() -> str:
    """A namespace unique to the test, so tests sharing the Redis never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def errors():
    """``errors(tier)``: the current value of rag_cache_errors_total{tier}."""
    from rag import metrics

    return lambda tier: metrics.REGISTRY.get_sample_value("rag_cache_errors_total", {"tier": tier}) or 0.0


@pytest.fixture
def requests_count():
    """``requests_count(tier, result)``: the current value of rag_cache_requests_total."""
    from rag import metrics

    return lambda tier, result: (
        metrics.REGISTRY.get_sample_value("rag_cache_requests_total", {"tier": tier, "result": result}) or 0.0
    )
